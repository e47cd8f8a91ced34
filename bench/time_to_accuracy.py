"""Time to accuracy: the CNN of the previous defaults against the CNN of params.yaml, side by side in
one run on one machine: training CPU-seconds, wall seconds, and the accuracy each reaches on the
validation split and (scored once, after training: nothing here is tuned) on the test split.

"Before" is round 2's default CNN: 2 blocks of 2 convs, batch norm, cosine decay over 16 epochs,
no augmentation and no test-time augmentation. "Now" is params.yaml's train_cnn, evaluated with
evaluate.tta_cnn. Writes bench/time_to_accuracy.json.

    python bench/time_to_accuracy.py
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.frontier import cpu_name  # noqa: E402
from stages.evaluate import predict  # noqa: E402
from stages.lib import params, paths  # noqa: E402
from stages.lib.files import load_arrays  # noqa: E402
from stages.lib.training import summarize, train  # noqa: E402
from stages.train_cnn import CNNParams, build_cnn  # noqa: E402

log = logging.getLogger("bench.time_to_accuracy")
RECORD = Path(__file__).with_name("time_to_accuracy.json")
BEFORE = {
    "epochs": 16, "batch_size": 128, "learning_rate": 0.001, "seed": 42, "patience": 16, "lr_schedule": "cosine",
    "augment_flip": "none", "augment_translate": 0, "steps_per_execution": 8, "label_smoothing": 0.0,
    "weight_decay": 0.0, "ema": 0.0, "precision": "float32", "filters": [32, 64], "convs_per_block": 2,
    "kernel_size": 3, "batch_norm": True, "conv_dropout": 0.25, "dense_units": 128, "dense_dropout": 0.4,
}  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    document = params.read()
    configurations = {
        "before": (params.validate("train_cnn", BEFORE, CNNParams), "none"),
        "now": (params.validate("train_cnn", document["train_cnn"], CNNParams), document["evaluate"]["tta_cnn"]),
    }
    train_split, val_split, (x_test, y_test) = load_arrays(paths.TRAIN), load_arrays(paths.VAL), load_arrays(paths.TEST)
    rows = []
    for name, (p, tta) in configurations.items():
        cpu, wall = time.process_time(), time.perf_counter()
        model, history = train(build_cnn, train_split, val_split, p)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        summary = summarize(model, history)
        augmented, single = predict(model, x_test, tta, 1000)
        rows.append({
            "config": name, "epochs": f"{summary['best_epoch']}/{summary['epochs_run']}", "cpu_seconds": round(cpu),
            "wall_seconds": round(wall), "val_accuracy": summary["val_accuracy"], "tta": tta,
            "test_accuracy": round(float((augmented.argmax(axis=1) == y_test).mean()), 4),
            "test_accuracy_single_view": round(float((single.argmax(axis=1) == y_test).mean()), 4),
            "params": summary["params"], "cpu": cpu_name(),
        })  # fmt: skip
        log.info("%s", rows[-1])
    RECORD.write_text(json.dumps({"rows": rows, "now": configurations["now"][0]}, indent=2) + "\n")
    log.info("\n| config | epochs | CPU s | wall s | val acc | test acc (TTA) | test acc (one view) |")
    log.info("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        log.info("| %s | %s | %d | %d | %.4f | %.4f (%s) | %.4f |", r["config"], r["epochs"], r["cpu_seconds"],
                 r["wall_seconds"], r["val_accuracy"], r["test_accuracy"], r["tta"],
                 r["test_accuracy_single_view"])  # fmt: skip
    log.info("now / before CPU-seconds: %.2f", rows[1]["cpu_seconds"] / rows[0]["cpu_seconds"])


if __name__ == "__main__":
    main()
