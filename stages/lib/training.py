"""The training loop of train-mlp and train-cnn: their shared params, seeded, early-stopped on
validation accuracy, logged and checkpointed per epoch; and the main both stages run."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from dvclive import Live

from stages.lib import params, paths
from stages.lib.checkpoint import Checkpoint, Progress, fingerprint
from stages.lib.dataset import TrainingInput, make_dataset
from stages.lib.eta import Eta
from stages.lib.files import load_arrays, write_bytes
from stages.lib.layers import plain, with_precision
from stages.lib.live import HISTORY_COLUMNS, TrainingLive, log_epoch
from stages.lib.modelfile import model_about, model_bytes
from stages.lib.tf_runtime import cpu_has_bfloat16, keras, seed_everything

log = logging.getLogger("stages.training")


class _EpochLoop(keras.callbacks.Callback):
    """Per epoch: record the history row, log it (outside a terminal) and to DVCLive, keep the
    best weights by validation accuracy, stop after `patience` epochs without a better one, and
    checkpoint all of that, so a killed run resumes from its last completed epoch."""

    def __init__(self, p: dict[str, Any], progress: Progress, *, log_lines: bool, checkpoint: Checkpoint | None,
                 live: Live | None, eta: Eta | None):  # fmt: skip
        super().__init__()
        self.epochs, self.patience, self.progress = p["epochs"], p["patience"], progress
        self.log_lines, self.checkpoint, self.live, self.eta = log_lines, checkpoint, live, eta
        # With a moving average of the weights, validation scores the average (Keras swaps it in
        # around each evaluation) and the average is what is kept.
        self.ema = keras.callbacks.SwapEMAWeights() if p["ema"] else None

    def _weights(self) -> list[np.ndarray]:
        """The weights that validation scored: the moving average's, if there is one."""
        if self.ema is None:
            return self.model.get_weights()
        self.ema.on_test_begin()
        try:
            return self.model.get_weights()
        finally:
            self.ema.on_test_end()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs, progress = logs or {}, self.progress
        row = {"epoch": epoch + 1, **{k: float(logs[k]) for k in HISTORY_COLUMNS[1:5]}}
        row["seconds"] = time.perf_counter() - self._start
        progress.rows.append(row)
        left = f"; {self.eta.line(progress.rows)}" if self.eta and row["epoch"] < self.epochs else ""
        if self.log_lines:
            log.info(
                "%s epoch %d/%d: loss %.4f acc %.4f, val_loss %.4f val_acc %.4f (%.1fs)%s",
                self.model.name, row["epoch"], self.epochs, row["loss"], row["accuracy"],
                row["val_loss"], row["val_accuracy"], row["seconds"], left,
            )  # fmt: skip
        elif left:  # the terminal's progress bar shows the epoch; the time left is ours
            log.info("%s epoch %d/%d%s", self.model.name, row["epoch"], self.epochs, left)
        if row["val_accuracy"] > progress.best:
            progress.best, progress.wait, progress.best_weights = row["val_accuracy"], 0, self._weights()
        else:
            progress.wait += 1
        if progress.wait >= self.patience:
            self.model.stop_training = True
        if self.live:
            log_epoch(self.live, row)
        if self.checkpoint:
            self.checkpoint.save(self.model, progress)

    @property
    def finished(self) -> bool:
        return self.progress.wait >= self.patience or len(self.progress.rows) >= self.epochs

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.progress.best_weights is not None:
            self.model.set_weights(self.progress.best_weights)


def learning_rate(p: dict[str, Any], steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate of `p`: a number, or a schedule over the run's steps."""
    if p["lr_schedule"] == "constant":
        return p["learning_rate"]
    steps = p["epochs"] * steps_per_epoch
    rise = round(p["warmup"] * steps)
    if p["lr_schedule"] == "cosine" and rise:
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=steps - rise, warmup_target=p["learning_rate"], warmup_steps=rise
        )
    if p["lr_schedule"] == "cosine":
        return keras.optimizers.schedules.CosineDecay(p["learning_rate"], decay_steps=steps)
    return Triangle(p["learning_rate"], steps, rise)


@keras.saving.register_keras_serializable(package="fmnist")
class Triangle(keras.optimizers.schedules.LearningRateSchedule):
    """From 0 up to `peak` in a straight line over the first `rise` steps, then down to 0 at `steps`:
    the fast-training recipes' schedule (airbench, Page's ResNet-9)."""

    def __init__(self, peak: float, steps: int, rise: int):
        self.peak, self.steps, self.rise = peak, steps, rise

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        up = step / max(self.rise, 1)
        down = (self.steps - step) / max(self.steps - self.rise, 1)
        return self.peak * keras.ops.clip(keras.ops.minimum(up, down) if self.rise else down, 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "steps": self.steps, "rise": self.rise}


def compile_model(model: keras.Model, p: dict[str, Any], steps_per_epoch: int) -> None:
    """The optimizer of `p` on logits, with its schedule, weight decay, label smoothing and
    weight average."""
    rate = learning_rate(p, steps_per_epoch)
    average = {"use_ema": True, "ema_momentum": p["ema"]} if p["ema"] else {}
    decay = {"weight_decay": p["weight_decay"]} if p["weight_decay"] else {}
    if p["optimizer"] == "nesterov":
        optimizer = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, **decay, **average)
    elif p["weight_decay"]:
        optimizer = keras.optimizers.AdamW(rate, **decay, **average)
    else:
        optimizer = keras.optimizers.Adam(rate, **average)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=p["label_smoothing"]),
        metrics=["accuracy"],
        steps_per_execution=p["steps_per_execution"],
    )


def train(
    build: Callable[[dict[str, Any]], keras.Model],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    p: dict[str, Any],
    *,
    progress_bar: bool = False,
    checkpoint: Checkpoint | None = None,
    live: Live | None = None,
    eta: Eta | None = None,
    adapt: Callable[[keras.Model, np.ndarray], None] | None = None,
) -> tuple[keras.Model, list[dict[str, float]]]:
    """Build and fit a model, stopping early on validation accuracy and returning the best epoch's
    weights; resumes from `checkpoint` when it holds an unfinished run. Each epoch is logged to
    `live` as it ends. `adapt(model, images)` sets what a new model takes from the training
    images before it trains (the CNN's whitening stem).

    Each epoch's line says how long is left (`eta`).

    Returns the model and its per-epoch history (HISTORY_COLUMNS), one row per epoch that ran.
    """
    seed_everything(p["seed"])
    if p["precision"] == "mixed_bfloat16" and cpu_has_bfloat16() is False:
        log.warning("precision mixed_bfloat16: this CPU has no bfloat16 instructions, so it is emulated "
                    "and slower than float32 here")  # fmt: skip
    model = with_precision(build, p)
    steps_per_epoch = math.ceil(len(train[1]) / p["batch_size"])
    resumed = checkpoint.restore(model.name) if checkpoint else None
    if resumed is not None:
        model, progress = resumed
        for row in progress.rows if live else ():  # the live log continues at the resumed step
            log_epoch(live, row)
    else:
        progress = Progress()
        if adapt:
            adapt(model, train[0])
        compile_model(model, p, steps_per_epoch)
    loop = _EpochLoop(p, progress, log_lines=not progress_bar, checkpoint=checkpoint, live=live, eta=eta)
    if loop.finished:  # killed after its last epoch was checkpointed
        model.set_weights(progress.best_weights)
        return model, progress.rows
    batches = TrainingInput(*train, batch_size=p["batch_size"], seed=p["seed"], flip=p["augment_flip"],
                            translate=p["augment_translate"])  # fmt: skip
    model.fit(
        batches.dataset,
        validation_data=make_dataset(*val, batch_size=max(p["batch_size"], 1024)),
        initial_epoch=len(progress.rows),
        epochs=p["epochs"],
        callbacks=[batches, loop, *([loop.ema] if loop.ema else [])],  # batches first: it starts each epoch
        verbose=1 if progress_bar else 0,
        shuffle=False,  # the pipeline shuffles, seeded by the epoch
    )
    return model, progress.rows


def summarize(model: keras.Model, history: list[dict[str, float]]) -> dict[str, Any]:
    """Training metrics: the kept (best) epoch, its validation scores, time and size."""
    best = max(history, key=lambda row: row["val_accuracy"])
    return {
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "val_accuracy": round(best["val_accuracy"], 6),
        "val_loss": round(best["val_loss"], 6),
        "train_seconds": round(sum(row["seconds"] for row in history), 2),
        "params": model.count_params(),
    }


def train_stage(
    name: str,
    build: Callable[[dict[str, Any]], keras.Model],
    schema: type[params.Section],
    adapt: Callable[[keras.Model, np.ndarray], None] | None = None,
) -> None:
    """The main of train-<name>: validate params, train on train/val logging each epoch to
    DVCLive, write the model and the final summary."""
    p = params.load(paths.training_section(name), schema)
    train_split = load_arrays(paths.TRAIN)
    val_split = load_arrays(paths.VAL)
    checkpoint = Checkpoint(paths.CHECKPOINTS_DIR / paths.training_section(name),
                            fingerprint(paths.training_stage(name), p))  # fmt: skip
    log.info("%s: %d training images, %d validation images", name, len(train_split[1]), len(val_split[1]))
    eta = Eta(paths.training_stage(name), p["epochs"])  # before DVCLive starts the summary it reads afresh
    live = TrainingLive(paths.live_dir(name))
    model, history = train(
        build, train_split, val_split, p, progress_bar=sys.stdout.isatty(), checkpoint=checkpoint, live=live, eta=eta,
        adapt=adapt,
    )  # fmt: skip
    summary = summarize(model, history)
    # The model first: a run that cannot write it leaves the last epoch's live summary, never a
    # finished run's summary beside a missing or older model.
    write_bytes(paths.model_file(name), model_bytes(plain(model), paths.model_file(name), model_about()))
    live.summary = {"step": len(history) - 1, **summary}
    live.end()
    checkpoint.remove()
    log.info(
        "%s: kept epoch %d of %d, val_accuracy %.4f, %.0fs",
        *(name, summary["best_epoch"], summary["epochs_run"], summary["val_accuracy"], summary["train_seconds"]),
    )
