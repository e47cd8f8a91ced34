"""The training input's own cost: CPU seconds per epoch of `stages.lib.dataset.TrainingInput` over
the training split, each augmentation setting, nothing trained. Run from the project root after
`dvc repro preprocess`:

    python bench/input.py [--epochs 3] [--root DIR]

`--root`: take `stages/` from another checkout (a `git worktree` of an older commit) to compare
two versions of the pipeline on one machine, in turns. That checkout's data/processed is read (a
symlink to this one's will do).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import statistics
import sys
import time
from pathlib import Path

log = logging.getLogger("bench.input")
SETTINGS = [{"flip": "none"}, {"flip": "random"}, {"flip": "alternate"}, {"flip": "random", "translate": 2}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="passes timed per setting (after one untimed)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout whose stages/ to time")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(args.root.resolve()))
    dataset = importlib.import_module("stages.lib.dataset")
    from stages.lib import paths
    from stages.lib.files import load_arrays

    x, y = load_arrays(paths.TRAIN)
    rows = []
    for setting in SETTINGS:
        pipeline = dataset.TrainingInput(x, y, batch_size=args.batch_size, seed=42, **setting)
        seconds = []
        for epoch in range(args.epochs + 1):
            pipeline.on_epoch_begin(epoch)
            start = time.process_time()
            for _ in pipeline.dataset:
                pass
            if epoch:  # the first pass traces the pipeline's functions
                seconds.append(time.process_time() - start)
        rows.append({**setting, "cpu_seconds_per_epoch": round(statistics.median(seconds), 3)})
        log.info(
            "%-40s %.3f CPU-s an epoch (%d images)", json.dumps(setting), rows[-1]["cpu_seconds_per_epoch"], len(y)
        )
    log.info("%s", json.dumps({"root": str(args.root), "images": len(y), "rows": rows}))


if __name__ == "__main__":
    main()
