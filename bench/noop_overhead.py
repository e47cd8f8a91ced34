"""What Prefect adds on top of DVC when nothing needs to run.

With the pipeline up to date, times a no-op `dvc repro` and a no-op flow run on Prefect's
ephemeral server (each in a fresh process, as a user or a scheduler would start them), and
prints both and their difference. Run from the project root after `dvc repro`:

    python bench/noop_overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.noop_overhead")


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    if "Running stage" in proc.stdout + proc.stderr:
        sys.exit(f"{' '.join(cmd)} ran a stage: run `dvc repro` first so that both measure a no-op")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PREFECT_HOME": home,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        env.pop("PREFECT_API_URL", None)  # the ephemeral server, started by the flow's own process
        commands = {
            "dvc repro (no-op)": ["dvc", "repro"],
            "flow run (no-op, ephemeral server)": [sys.executable, "-m", "flows", "run"],
        }
        # One untimed flow run: the first start of an empty PREFECT_HOME migrates its database.
        _timed(commands["flow run (no-op, ephemeral server)"], env)
        times = {name: [_timed(cmd, env) for _ in range(args.repeats)] for name, cmd in commands.items()}
    medians = {name: statistics.median(t) for name, t in times.items()}
    width = max(map(len, medians))
    log.info("%s  %8s  %s", "command".ljust(width), "median", "runs (s)")
    for name, t in times.items():
        log.info("%s  %7.2fs  %s", name.ljust(width), medians[name], " ".join(f"{x:.2f}" for x in t))
    dvc, flow_ = medians.values()
    log.info("%s  %7.2fs", "flow overhead".ljust(width), flow_ - dvc)


if __name__ == "__main__":
    main()
