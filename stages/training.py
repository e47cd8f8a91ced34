"""The training loop shared by train-mlp and train-cnn: tf.data input, seeded, early-stopped."""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from stages import params, paths
from stages.io import atomic_path, load_arrays, write_json, write_text

log = logging.getLogger("stages.training")

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """A batched, prefetched tf.data pipeline (seed 000); reshuffled every epoch when seeded."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def seed_everything(seed: int) -> None:
    """Same params, same model: seed Python, NumPy and TF, and make TF's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class _EpochRecorder(keras.callbacks.Callback):
    """Collects one history row per epoch and, outside a terminal, logs it as one line."""

    def __init__(self, name: str, epochs: int, log_lines: bool):
        super().__init__()
        self.name, self.epochs, self.log_lines = name, epochs, log_lines
        self.rows: list[dict[str, float]] = []

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


def train(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    p: dict[str, Any],
    *,
    progress_bar: bool = False,
) -> list[dict[str, float]]:
    """Fit `model` with Adam on logits; stop early on validation accuracy, keeping the best epoch.

    Returns the per-epoch history (HISTORY_COLUMNS), one row per epoch that ran.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    recorder = _EpochRecorder(model.name, p["epochs"], log_lines=not progress_bar)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=p["patience"], restore_best_weights=True
    )
    model.fit(
        make_dataset(*train, batch_size=p["batch_size"], shuffle_seed=p["seed"]),
        validation_data=make_dataset(*val, batch_size=max(p["batch_size"], 1024)),
        epochs=p["epochs"],
        callbacks=[recorder, stop],
        verbose=1 if progress_bar else 0,
        shuffle=False,  # the dataset reshuffles itself, seeded
    )
    return recorder.rows


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


def history_csv(history: list[dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (row[k] if k == "epoch" else f"{row[k]:.6g}") for k in HISTORY_COLUMNS})
    return out.getvalue()


def run_training_stage(name: str, build: Callable[[dict[str, Any]], keras.Model], schema: params.Schema) -> None:
    """Main of train-<name>: validate params, train on train/val, write model, history and metrics."""
    p = params.load(f"train_{name}", schema)
    train_split = load_arrays(paths.TRAIN)
    val_split = load_arrays(paths.VAL)
    seed_everything(p["seed"])
    model = build(p)
    log.info("%s: %d parameters, %d training images, %d validation images",
             name, model.count_params(), len(train_split[1]), len(val_split[1]))  # fmt: skip
    history = train(model, train_split, val_split, p, progress_bar=sys.stdout.isatty())
    summary = summarize(model, history)
    with atomic_path(paths.model_file(name)) as tmp:
        model.save(tmp)
    write_text(paths.history_file(name), history_csv(history))
    write_json(paths.training_metrics_file(name), summary)
    log.info(
        "%s: kept epoch %d of %d, val_accuracy %.4f, %.0fs",
        *(name, summary["best_epoch"], summary["epochs_run"], summary["val_accuracy"], summary["train_seconds"]),
    )
