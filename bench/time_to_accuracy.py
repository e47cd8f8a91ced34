"""Time to accuracy: the CNN of earlier defaults against this checkout's, each trained by its own
commit's code and params, side by side in one run on one machine: CPU-seconds, wall seconds, and
the accuracy each reaches on the validation split and (scored once, after training: nothing here
is tuned) on the test split.

    python bench/time_to_accuracy.py [--commits a58c034 ecd1cf2] [--only NAME ...]

By default: round 2's default (commit a58c034: 2 blocks of 2 convs for 16 epochs), the default
before this round's (ecd1cf2: 1 + 2 convs, 8 epochs, a weight average) and this checkout's
params.yaml with its working tree. Each commit is checked out in a `git worktree` beside this one
(data/processed linked to this checkout's, so every run reads the same splits) and its own
`python -m stages.train_cnn` is run there, one after another; CPU-seconds are that process's
(TensorFlow's start and the validation passes included). The test split is scored here, with
the commit's `evaluate.tta_cnn`. Writes bench/time_to_accuracy.json. Run after `dvc repro preprocess`.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.frontier import cpu_name  # noqa: E402
from stages.lib import paths  # noqa: E402
from stages.lib.files import load_arrays  # noqa: E402

log = logging.getLogger("bench.time_to_accuracy")
RECORD = Path(__file__).with_name("time_to_accuracy.json")
COMMITS = {"round 2": "a58c034", "before": "ecd1cf2"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_in(checkout: Path) -> dict[str, Any]:
    """Run `checkout`'s train-cnn stage there; its CPU and wall seconds and its summary."""
    cpu, wall = _children_cpu(), time.perf_counter()
    with (checkout / "train_cnn.log").open("w") as out:
        subprocess.run([sys.executable, "-m", "stages.train_cnn"], cwd=checkout, stdout=out, stderr=subprocess.STDOUT,
                       check=True)  # fmt: skip
    cpu, wall = _children_cpu() - cpu, time.perf_counter() - wall
    summary = json.loads((checkout / "dvclive" / "train_cnn" / "metrics.json").read_text())
    return {"cpu_seconds": round(cpu), "wall_seconds": round(wall), **summary}


def test_accuracy(model_file: Path, tta: str) -> tuple[float, float]:
    """Test accuracy of a trained model file with `tta`, and from the image alone."""
    from stages.evaluate import predict
    from stages.lib.modelfile import load_model

    x_test, y_test = load_arrays(paths.TEST)
    augmented, single = predict(load_model(model_file), x_test, tta, 1000)
    return (round(float((augmented.argmax(axis=1) == y_test).mean()), 4),
            round(float((single.argmax(axis=1) == y_test).mean()), 4))  # fmt: skip


def checkout_of(commit: str | None, scratch: Path) -> Path:
    """A worktree of `commit` in `scratch` (None: this checkout) that reads this checkout's splits."""
    if commit is None:
        return ROOT
    tree = scratch / commit
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), commit], check=True)
    processed = tree / "data" / "processed"
    shutil.rmtree(processed, ignore_errors=True)  # the commit's own holds only its .gitignore
    processed.parent.mkdir(exist_ok=True)
    processed.symlink_to(ROOT / "data" / "processed")
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", nargs=2, default=list(COMMITS.values()), metavar=("ROUND2", "BEFORE"),
                        help="the commits of round 2's and of the previous default")  # fmt: skip
    parser.add_argument("--only", nargs="+", choices=[*COMMITS, "now"], help="train only these")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    runs = {**dict(zip(COMMITS, args.commits, strict=True)), "now": None}
    rows = []
    with tempfile.TemporaryDirectory(prefix="time-to-accuracy-") as scratch:
        try:
            for name, commit in runs.items():
                if args.only and name not in args.only:
                    continue
                checkout = checkout_of(commit, Path(scratch))
                trained = train_in(checkout)
                document = yaml.safe_load((checkout / "params.yaml").read_text())
                tta = document.get("evaluate", {}).get("tta_cnn", "none")
                test, single = test_accuracy(checkout / "models" / "cnn.keras", tta)
                rows.append({
                    "config": name, "commit": commit or "this checkout",
                    "epochs": f"{trained['best_epoch']}/{trained['epochs_run']}", "cpu_seconds": trained["cpu_seconds"],
                    "wall_seconds": trained["wall_seconds"], "val_accuracy": trained["val_accuracy"], "tta": tta,
                    "test_accuracy": test, "test_accuracy_single_view": single, "params": trained["params"],
                    "cpu": cpu_name(), "train_cnn": document["train_cnn"],
                })  # fmt: skip
                log.info("%s", json.dumps(rows[-1]))
        finally:
            for tree in Path(scratch).iterdir():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
                shutil.rmtree(tree, ignore_errors=True)
    RECORD.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    log.info("\nCPU: %s\n| config | commit | epochs | CPU s | wall s | val acc | test acc (TTA) | test acc (one view) |"
             "\n|---|---|---:|---:|---:|---:|---:|---:|", cpu_name())  # fmt: skip
    for r in rows:
        log.info("| %s | %s | %s | %d | %d | %.4f | %.4f (%s) | %.4f |", r["config"], r["commit"], r["epochs"],
                 r["cpu_seconds"], r["wall_seconds"], r["val_accuracy"], r["test_accuracy"], r["tta"],
                 r["test_accuracy_single_view"])  # fmt: skip
    first = rows[0]["cpu_seconds"]
    log.info("CPU-seconds against %s's: %s", rows[0]["config"],
             ", ".join(f"{r['config']} {r['cpu_seconds'] / first:.2f}" for r in rows))  # fmt: skip


if __name__ == "__main__":
    main()
