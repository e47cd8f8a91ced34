"""Training throughput and model quality, beside the seeds' style of training.

For each model with the default params: parameter count, epochs, training seconds, images/s,
validation and test accuracy (from the committed metrics of the last `dvc repro`), and the
throughput of the same model trained the seeds' way — `model.fit` on in-memory NumPy arrays,
same batch size — measured side by side in this run. Run from the project root after `dvc repro`:

    python bench/training.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from typing import Any

import keras
import numpy as np

from stages import params, paths
from stages.io import load_arrays
from stages.models import CNN_SCHEMA, MLP_SCHEMA, build_cnn, build_mlp
from stages.training import make_dataset, seed_everything

log = logging.getLogger("bench.training")
MODELS = {"mlp": (build_mlp, MLP_SCHEMA), "cnn": (build_cnn, CNN_SCHEMA)}


def _compiled(build, p: dict[str, Any]) -> keras.Model:
    seed_everything(p["seed"])
    model = build(p)
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def images_per_second(
    build, p: dict[str, Any], x: np.ndarray, y: np.ndarray, *, epochs: int, seed_style: bool
) -> float:
    """Throughput of `epochs` epochs after one warm-up epoch (graph tracing is not training)."""
    model = _compiled(build, p)
    if seed_style:
        fit = lambda n: model.fit(x, y, batch_size=p["batch_size"], epochs=n, verbose=0)  # noqa: E731
    else:
        ds = make_dataset(x, y, batch_size=p["batch_size"], shuffle_seed=p["seed"])
        fit = lambda n: model.fit(ds, epochs=n, verbose=0, shuffle=False)  # noqa: E731
    fit(1)
    start = time.perf_counter()
    fit(epochs)
    return epochs * len(y) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    x, y = load_arrays(paths.TRAIN)
    evaluation = json.loads((paths.METRICS / "evaluate.json").read_text())
    header = ("model", "params", "epochs", "train s", "img/s (stage)", "val acc", "test acc",
              "img/s tf.data", "img/s seed-style", "ratio")  # fmt: skip
    rows = []
    for name, (build, schema) in MODELS.items():
        p = params.load(f"train_{name}", schema)
        summary = json.loads(paths.training_metrics_file(name).read_text())
        ours = images_per_second(build, p, x, y, epochs=args.epochs, seed_style=False)
        seed = images_per_second(build, p, x, y, epochs=args.epochs, seed_style=True)
        stage_rate = summary["epochs_run"] * len(y) / summary["train_seconds"]
        rows.append((
            name, f"{summary['params']:,}", f"{summary['best_epoch']}/{summary['epochs_run']}",
            f"{summary['train_seconds']:.0f}", f"{stage_rate:.0f}", f"{summary['val_accuracy']:.4f}",
            f"{evaluation[name]['accuracy']:.4f}", f"{ours:.0f}", f"{seed:.0f}", f"{ours / seed:.2f}x",
        ))  # fmt: skip
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        log.info("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    log.info("peak RSS of this process: %.0f MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


if __name__ == "__main__":
    main()
