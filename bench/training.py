"""Training throughput and model quality, beside the seeds' style of training.

For each model with the default params: parameter count, epochs, training seconds, images/s,
validation and test accuracy (from the committed metrics of the last `dvc repro`), and the
throughput of the same model trained the seeds' way — `model.fit` on in-memory NumPy arrays,
same batch size — measured side by side in this run. Run from the project root after `dvc repro`:

    python bench/training.py [--images 12800] [--rounds 3]

"Ours" is what the stage does: its tf.data pipeline and `steps_per_execution` from params.yaml;
"seed-style" is Keras's defaults on NumPy arrays. Throughput is timed on the first `--images`
training images after one untimed warm-up pass (graph tracing is not training), the two styles
alternating for `--rounds` rounds; the medians are reported, so neither style gains from going
second. Besides wall-clock images/s, images per CPU-second: on a shared virtual machine the
host sometimes takes a core away for seconds, which moves wall time but not CPU time.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
from typing import Any

import keras
import numpy as np

from stages.lib import params, paths
from stages.lib.dataset import TrainingInput
from stages.lib.files import load_arrays
from stages.lib.layers import with_precision
from stages.lib.tf_runtime import seed_everything
from stages.train_cnn import CNNParams, build_cnn
from stages.train_mlp import MLPParams, build_mlp

log = logging.getLogger("bench.training")
MODELS = {"mlp": (build_mlp, MLPParams), "cnn": (build_cnn, CNNParams)}


def _compiled(build, p: dict[str, Any], steps_per_execution: int) -> keras.Model:
    seed_everything(p["seed"])
    model = with_precision(build, p)
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def images_per_second(
    build, p: dict[str, Any], x: np.ndarray, y: np.ndarray, *, seed_style: bool
) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second) of one timed pass."""
    model = _compiled(build, p, 1 if seed_style else p["steps_per_execution"])
    if seed_style:
        fit = lambda: model.fit(x, y, batch_size=p["batch_size"], epochs=1, verbose=0)  # noqa: E731
    else:
        batches = TrainingInput(x, y, batch_size=p["batch_size"], seed=p["seed"], flip=p["augment_flip"],
                                translate=p["augment_translate"])  # fmt: skip
        fit = lambda: model.fit(batches.dataset, epochs=1, verbose=0, shuffle=False, callbacks=[batches])  # noqa: E731
    fit()
    start, cpu = time.perf_counter(), time.process_time()
    fit()
    return len(y) / (time.perf_counter() - start), len(y) / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12800, help="training images per timed pass")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per style")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    x, y = load_arrays(paths.TRAIN)
    evaluation = json.loads(paths.EVALUATION.read_text())
    header = ("model", "params", "epochs", "train s", "img/s (stage)", "val acc", "test acc",
              "img/s ours", "img/s seed-style", "ratio", "img/cpu-s ours", "img/cpu-s seed", "ratio")  # fmt: skip
    rows = []
    for name, (build, schema) in MODELS.items():
        p = params.load(f"train_{name}", schema)
        summary = json.loads(paths.training_metrics_file(name).read_text())
        rates: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for seed_style in (False, True):
                rates[seed_style].append(
                    images_per_second(build, p, x[: args.images], y[: args.images], seed_style=seed_style)
                )
        ours, seed = (statistics.median(r[0] for r in rates[style]) for style in (False, True))
        ours_cpu, seed_cpu = (statistics.median(r[1] for r in rates[style]) for style in (False, True))
        stage_rate = summary["epochs_run"] * len(y) / summary["train_seconds"]
        rows.append((
            name, f"{summary['params']:,}", f"{summary['best_epoch']}/{summary['epochs_run']}",
            f"{summary['train_seconds']:.0f}", f"{stage_rate:.0f}", f"{summary['val_accuracy']:.4f}",
            f"{evaluation[name]['accuracy']:.4f}", f"{ours:.0f}", f"{seed:.0f}", f"{ours / seed:.2f}x",
            f"{ours_cpu:.0f}", f"{seed_cpu:.0f}", f"{ours_cpu / seed_cpu:.2f}x",
        ))  # fmt: skip
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        log.info("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    log.info("peak RSS of this process: %.0f MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
