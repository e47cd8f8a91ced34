"""How much of a difference is training noise, and how much test-set noise: the CNN of params.yaml
trained with several seeds on one budget, each scored on the validation and the test split.

The spread across seeds (mean ± standard deviation, range) is what retraining alone moves; the
Wilson interval of one accuracy on the test split is what the test set's size allows; McNemar's
test between the two most different seeds says whether even those are told apart. Nothing here is
tuned: the seeds are fixed in advance, and the test split is only scored.

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
from stages.lib.files import load_arrays
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
    val, (x_test, y_test) = load_arrays(paths.VAL), load_arrays(paths.TEST)
    section = params.read()["train_cnn"]
    p_all = params.validate("train_cnn", {**section, "epochs": args.epochs, "patience": args.epochs}, CNNParams)
    tta = params.read()["evaluate"]["tta_cnn"]
    rows, right = [], {}
    for seed in range(1, args.seeds + 1):
        cpu = time.process_time()
        model, history = train(build_cnn, (x[keep], y[keep]), val, {**p_all, "seed": seed})
        predicted = predict(model, x_test, tta, 1000)[0].argmax(axis=1)
        right[seed] = predicted == y_test
        rows.append({"seed": seed, "val_accuracy": max(r["val_accuracy"] for r in history),
                     "test_accuracy": float(right[seed].mean()),
                     "cpu_seconds": round(time.process_time() - cpu)})  # fmt: skip
        log.info("%s", rows[-1])
    tests = [r["test_accuracy"] for r in rows]
    vals = [r["val_accuracy"] for r in rows]
    low, high = stats.wilson(int(right[1].sum()), len(y_test))
    worst, best = min(right, key=lambda s: right[s].mean()), max(right, key=lambda s: right[s].mean())
    apart = stats.compare(right[worst], right[best])
    summary = {
        "budget": {"train_images": len(keep), "epochs": args.epochs, "tta": tta},
        "rows": rows,
        "test_mean": statistics.mean(tests), "test_std": statistics.stdev(tests),
        "test_range": [min(tests), max(tests)],
        "val_mean": statistics.mean(vals), "val_std": statistics.stdev(vals),
        "test_interval_half_width": (high - low) / 2,
        "most_different_seeds": {"a": worst, "b": best, "difference": apart.difference, "p_value": apart.p_value},
    }  # fmt: skip
    RECORD.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("\n| seed | val acc | test acc | CPU s |\n|---:|---:|---:|---:|")
    for r in rows:
        log.info("| %d | %.4f | %.4f | %d |", r["seed"], r["val_accuracy"], r["test_accuracy"], r["cpu_seconds"])
    log.info("\ntest accuracy over %d seeds: %.4f ± %.4f (range %.4f-%.4f); one accuracy's 95%% interval: ±%.4f; "
             "seeds %d and %d: %s", len(rows), summary["test_mean"], summary["test_std"], min(tests), max(tests),
             summary["test_interval_half_width"], worst, best, apart.summary())  # fmt: skip


if __name__ == "__main__":
    main()
