"""The training loop shared by train-mlp and train-cnn: tf.data input, seeded, early-stopped."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from dvclive import Live
from scmrepo.exceptions import SCMError

from stages import params, paths
from stages.idx import CLASS_NAMES
from stages.io import (
    MODEL_ABOUT_KEY,
    StageError,
    atomic_path,
    disk_full_message,
    is_disk_full,
    load_arrays,
    read_json,
    save_arrays,
    write_bytes,
    write_json,
)
from stages.models import N_CLASSES, with_precision
from stages.tf_runtime import keras, tf

log = logging.getLogger("stages.training")
# DVCLive names a random experiment at INFO even under a plain `dvc repro`, where none is saved.
logging.getLogger("dvclive").setLevel(logging.WARNING)

HISTORY_COLUMNS = ("epoch", *paths.HISTORY_METRICS)


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline (seed 000) of images and one-hot labels (so the
    loss can smooth them); reshuffled every epoch when seeded."""
    ds = tf.data.Dataset.from_tensor_slices((x, np.eye(N_CLASSES, dtype=np.float32)[y]))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU has bfloat16 instructions (x86's avx512_bf16 or AMX); None where Linux's
    cpuinfo is not there to say."""
    try:
        flags = cpuinfo.read_text().split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def seed_everything(seed: int) -> None:
    """Same params, same model: seed Python, NumPy and TF, and make TF's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class TrainingLive(Live):
    """DVCLive for a training stage: it writes dvclive/train_<name>/ as each epoch ends, so
    `dvc exp show`, DVC's VS Code extension and Studio can follow a running stage. dvc.yaml
    declares those files, so DVCLive writes no dvc.yaml of its own, and saving an experiment is
    `dvc exp run`'s job (or the sweep's), not the stage's.
    """

    def __init__(self, directory: Path):
        super().__init__(str(directory), save_dvc_exp=False, dvcyaml=None, report=None)

    def _init_dvc(self) -> None:
        # DVCLive 3.49 asks git for HEAD before its own check for a repository without commits,
        # and fails there (`dvc repro` right after `git init`): then there is no experiment to
        # name, and the files are all it needs to write.
        try:
            super()._init_dvc()
        except SCMError:
            self._dvc_repo, self._dvc_file = None, "dvc.yaml"


def log_epoch(live: Live, row: dict[str, float]) -> None:
    """One epoch's row into DVCLive: a line per metric in its TSV, then the step's summary."""
    for key in HISTORY_COLUMNS[1:]:
        live.log_metric(key, round(row[key], 6))
    live.next_step()


class _EpochLoop(keras.callbacks.Callback):
    """Per epoch: record the history row, log it (outside a terminal) and to DVCLive, keep the
    best weights by validation accuracy, stop after `patience` epochs without a better one, and
    checkpoint all of that, so a killed run resumes from its last completed epoch."""

    def __init__(
        self, name: str, p: dict[str, Any], *, log_lines: bool, checkpoint: Checkpoint | None, live: Live | None
    ):
        super().__init__()
        self.name, self.epochs, self.patience = name, p["epochs"], p["patience"]
        self.log_lines, self.checkpoint, self.live = log_lines, checkpoint, live
        self.rows: list[dict[str, float]] = []
        self.best, self.wait, self.best_weights = -math.inf, 0, None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": epoch + 1, **{k: float(logs[k]) for k in HISTORY_COLUMNS[1:5]}}
        row["seconds"] = time.perf_counter() - self._start
        self.rows.append(row)
        if self.log_lines:
            log.info(
                "%s epoch %d/%d: loss %.4f acc %.4f, val_loss %.4f val_acc %.4f (%.1fs)",
                self.name, row["epoch"], self.epochs, row["loss"], row["accuracy"],
                row["val_loss"], row["val_accuracy"], row["seconds"],
            )  # fmt: skip
        if row["val_accuracy"] > self.best:
            self.best, self.wait, self.best_weights = row["val_accuracy"], 0, self.model.get_weights()
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self.model.stop_training = True
        if self.live:
            log_epoch(self.live, row)
        if self.checkpoint:
            self.checkpoint.save(self.model, self)

    @property
    def finished(self) -> bool:
        return self.wait >= self.patience or len(self.rows) >= self.epochs

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class Checkpoint:
    """The state of an unfinished training run in one directory, outside DVC's outs: the model
    with its optimizer after the last completed epoch, the best weights so far and the history.

    `fingerprint` names what the run was started from (params, inputs, code); a checkpoint with
    another fingerprint is stale and ignored.
    """

    def __init__(self, directory: Path, fingerprint: str):
        self.directory, self.fingerprint = directory, fingerprint

    def save(self, model: keras.Model, loop: _EpochLoop) -> None:
        epoch = len(loop.rows)
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / f"epoch-{epoch}.keras") as tmp:
            model.save(tmp)
        save_arrays(self.directory / f"best-{epoch}.npz", **{f"w{i}": w for i, w in enumerate(loop.best_weights)})
        # state.json is written last and names the epoch: a kill at any point leaves it
        # pointing at files that are complete.
        state = {"fingerprint": self.fingerprint, "epoch": epoch, "rows": loop.rows,
                 "best": loop.best, "wait": loop.wait}  # fmt: skip
        write_json(self.directory / "state.json", state)
        for old in self.directory.glob("*"):
            if old.name not in (f"epoch-{epoch}.keras", f"best-{epoch}.npz", "state.json"):
                old.unlink()
        log.info("%s: checkpoint saved after epoch %d", loop.name, epoch)

    def restore(self, loop: _EpochLoop) -> keras.Model | None:
        """The model to continue from, with `loop` set to where the run stopped; None if there is
        no usable checkpoint."""
        try:
            state = json.loads((self.directory / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.info("%s: ignoring a checkpoint of other params, data or code", loop.name)
            self.remove()
            return None
        epoch = state["epoch"]
        model = keras.models.load_model(self.directory / f"epoch-{epoch}.keras", safe_mode=True)
        with np.load(self.directory / f"best-{epoch}.npz", allow_pickle=False) as best:
            loop.best_weights = [best[f"w{i}"] for i in range(len(best.files))]
        loop.rows, loop.best, loop.wait = state["rows"], state["best"], state["wait"]
        log.info("%s: resuming after epoch %d from %s", loop.name, epoch, self.directory)
        return model

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def train(
    build: Callable[[dict[str, Any]], keras.Model],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    p: dict[str, Any],
    *,
    progress_bar: bool = False,
    checkpoint: Checkpoint | None = None,
    live: Live | None = None,
) -> tuple[keras.Model, list[dict[str, float]]]:
    """Build and fit a model with Adam (AdamW with weight decay) on logits, stopping early on
    validation accuracy and returning the best epoch's weights; resumes from `checkpoint` when
    it holds an unfinished run. Each epoch is logged to `live` as it ends.

    Returns the model and its per-epoch history (HISTORY_COLUMNS), one row per epoch that ran.
    """
    seed_everything(p["seed"])
    if p["precision"] == "mixed_bfloat16" and cpu_has_bfloat16() is False:
        log.warning("precision mixed_bfloat16: this CPU has no bfloat16 instructions, so it is emulated "
                    "and slower than float32 here")  # fmt: skip
    model = with_precision(build, p)
    loop = _EpochLoop(model.name, p, log_lines=not progress_bar, checkpoint=checkpoint, live=live)
    resumed = checkpoint.restore(loop) if checkpoint else None
    if resumed is not None:
        model = resumed
        for row in loop.rows if live else ():  # the live log continues at the resumed step
            log_epoch(live, row)
    else:
        learning_rate = p["learning_rate"]
        if p["lr_schedule"] == "cosine":
            steps = p["epochs"] * math.ceil(len(train[1]) / p["batch_size"])
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
        if p["weight_decay"]:
            optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=p["weight_decay"])
        else:
            optimizer = keras.optimizers.Adam(learning_rate)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=p["label_smoothing"]),
            metrics=["accuracy"],
            steps_per_execution=p["steps_per_execution"],
        )
    if loop.finished:  # killed after its last epoch was checkpointed
        model.set_weights(loop.best_weights)
        return model, loop.rows
    model.fit(
        make_dataset(*train, batch_size=p["batch_size"], shuffle_seed=p["seed"] + len(loop.rows)),
        validation_data=make_dataset(*val, batch_size=max(p["batch_size"], 1024)),
        initial_epoch=len(loop.rows),
        epochs=p["epochs"],
        callbacks=[loop],
        verbose=1 if progress_bar else 0,
        shuffle=False,  # the dataset reshuffles itself, seeded
    )
    return model, loop.rows


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


def _fingerprint(p: dict[str, Any], name: str) -> str:
    """What a training run depends on: its params, its inputs and the stages' code."""
    digest = hashlib.sha256(json.dumps({"stage": name, **p}, sort_keys=True).encode())
    for path in (paths.TRAIN, paths.VAL, *sorted(paths.ROOT.joinpath("stages").glob("*.py"))):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _renumber_shared_objects(node: Any, ids: dict[int, int]) -> Any:
    """Keras links objects shared between layers by their id() at save time; number them 1, 2, ...
    in order of appearance instead (same links, same bytes in every process)."""
    if isinstance(node, dict):
        if "shared_object_id" in node:
            node["shared_object_id"] = ids.setdefault(node["shared_object_id"], len(ids) + 1)
        return {key: _renumber_shared_objects(value, ids) for key, value in node.items()}
    if isinstance(node, list):
        return [_renumber_shared_objects(value, ids) for value in node]
    return node


def model_bytes(model: keras.Model, path: Path, about: dict[str, Any] | None = None) -> bytes:
    """`model` as the bytes of a .keras file that depend on the model alone (to be written at `path`),
    with `about` under MODEL_ABOUT_KEY in its metadata.json (what its inputs and outputs mean).

    Keras stamps the save time into the archive (metadata.json's date_saved and the weights'
    zip entry) and memory addresses into config.json (`shared_object_id`), so every retraining
    would be a new DVC object: stages downstream would rerun, and equal trainings on two
    machines of a sweep would leave run-cache entries that never match each other's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".save-") as scratch:
            saved = Path(scratch) / path.name
            model.save(saved)
            archive = io.BytesIO()
            with zipfile.ZipFile(saved) as src, zipfile.ZipFile(archive, "w") as dst:
                for entry in src.infolist():
                    data = src.read(entry)
                    if entry.filename == "metadata.json":
                        metadata = json.loads(data)
                        metadata.pop("date_saved", None)
                        if about:
                            metadata[MODEL_ABOUT_KEY] = about
                        data = json.dumps(metadata).encode()
                    elif entry.filename == "config.json":
                        data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
                    dst.writestr(zipfile.ZipInfo(entry.filename), data, compress_type=entry.compress_type)
            return archive.getvalue()
    except Exception as exc:
        if is_disk_full(exc):  # Keras (h5py) writing its scratch copy
            raise StageError(disk_full_message(path)) from None
        raise


def save_model(model: keras.Model, path: Path, about: dict[str, Any] | None = None) -> None:
    write_bytes(path, model_bytes(model, path, about))


def model_about() -> dict[str, Any]:
    """What a served model needs besides its weights: how to turn 0-255 pixels into its inputs
    (the training split's normalisation) and the class of each logit. A model fetched on its
    own (`dvc artifacts get`) then carries everything `fmnist-predict --model-file` needs."""
    stats = read_json(paths.STATS)
    return {"input": {key: stats[key] for key in ("normalize", "mean", "std")}, "classes": list(CLASS_NAMES)}


def run_training_stage(name: str, build: Callable[[dict[str, Any]], keras.Model], schema: type[params.Section]) -> None:
    """Main of train-<name>: validate params, train on train/val logging each epoch to DVCLive, write the model
    and the final summary."""
    p = params.load(f"train_{name}", schema)
    train_split = load_arrays(paths.TRAIN)
    val_split = load_arrays(paths.VAL)
    checkpoint = Checkpoint(paths.CHECKPOINTS / f"train_{name}", _fingerprint(p, name))
    log.info("%s: %d training images, %d validation images", name, len(train_split[1]), len(val_split[1]))
    live = TrainingLive(paths.live_dir(name))
    model, history = train(
        build, train_split, val_split, p, progress_bar=sys.stdout.isatty(), checkpoint=checkpoint, live=live
    )
    summary = summarize(model, history)
    # The model first: a run that cannot write it leaves the last epoch's live summary, never a
    # finished run's summary beside a missing or older model.
    write_bytes(paths.model_file(name), model_bytes(model, paths.model_file(name), model_about()))
    live.summary = {"step": len(history) - 1, **summary}
    live.end()
    checkpoint.remove()
    log.info(
        "%s: kept epoch %d of %d, val_accuracy %.4f, %.0fs",
        *(name, summary["best_epoch"], summary["epochs_run"], summary["val_accuracy"], summary["train_seconds"]),
    )
