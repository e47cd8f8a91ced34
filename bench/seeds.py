"""How much of a difference is training noise, and how much test-set noise: the CNN of params.yaml
trained with several seeds on one budget, each scored on the validation split.

The spread across seeds (mean ± standard deviation, range) on the same validation images is what
retraining alone moves; the Wilson interval of an accuracy like theirs on the 10,000 test images is
what the test set's size allows (computed from its size: the test split is read by `evaluate`
alone); McNemar's test between the two most different seeds, on the validation images, says
whether even those are told apart. Nothing here is tuned: the seeds are fixed in advance.

    python bench/seeds.py [--seeds 5] [--train 15000] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from stages.evaluate import predict
from stages.lib import params, paths, stats
from stages.lib.files import load_arrays, read_json
from stages.lib.training import train
from stages.preprocess import stratified_sample
from stages.train_cnn import CNNParams, build_cnn

log = logging.getLogger("bench.seeds")
RECORD = Path(__file__).with_name("seeds.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train", type=int, default=15000, help="training images (a stratified subset)")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    x, y = load_arrays(paths.TRAIN)
    keep = stratified_sample(y, min(args.train, len(y)), np.random.default_rng(0))
    val = load_arrays(paths.VAL)
    x_val, y_val = val
    test_size = read_json(paths.STATS)["splits"]["test"]["count"]
    section = params.read()["train_cnn"]
    p_all = params.validate("train_cnn", {**section, "epochs": args.epochs, "patience": args.epochs}, CNNParams)
    tta = params.read()["evaluate"]["tta_cnn"]
    rows, right = [], {}
    for seed in range(1, args.seeds + 1):
        cpu = time.process_time()
        model, history = train(build_cnn, (x[keep], y[keep]), val, {**p_all, "seed": seed})
        cpu = time.process_time() - cpu
        predicted = predict(model, x_val, tta, 1000)[0].argmax(axis=1)  # the kept epoch's model
        right[seed] = predicted == y_val
        rows.append({"seed": seed, "val_accuracy": float(right[seed].mean()), "cpu_seconds": round(cpu)})
        log.info("%s", rows[-1])
    vals = [r["val_accuracy"] for r in rows]
    low, high = stats.wilson(round(statistics.mean(vals) * test_size), test_size)
    worst, best = min(right, key=lambda s: right[s].mean()), max(right, key=lambda s: right[s].mean())
    apart = stats.compare(right[worst], right[best])
    summary = {
        "budget": {"train_images": len(keep), "epochs": args.epochs, "tta": tta},
        "rows": rows,
        "val_mean": statistics.mean(vals), "val_std": statistics.stdev(vals), "val_range": [min(vals), max(vals)],
        "test_size": test_size, "test_interval_half_width": (high - low) / 2,
        "most_different_seeds": {"a": worst, "b": best, "difference": apart.difference, "p_value": apart.p_value},
    }  # fmt: skip
    RECORD.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("\n| seed | val acc | CPU s |\n|---:|---:|---:|")
    for r in rows:
        log.info("| %d | %.4f | %d |", r["seed"], r["val_accuracy"], r["cpu_seconds"])
    log.info("\nvalidation accuracy over %d seeds: %.4f ± %.4f (range %.4f-%.4f); an accuracy like it on the %d "
             "test images: ±%.4f (95%%); seeds %d and %d on the validation images: %s", len(rows), summary["val_mean"],
             summary["val_std"], min(vals), max(vals), test_size, summary["test_interval_half_width"], worst, best,
             apart.summary())  # fmt: skip


if __name__ == "__main__":
    main()
