"""The tests that race the most, several times in a row: a test that fails one run in ten is a defect
of the test or of the product, and one run does not show it.

    python bench/repeat_tests.py [-n 5] [PYTEST_ARGS ...]

Runs pytest on the sweep and fault tests (the tests on a real Prefect server with real workers,
kills and restarts; or PYTEST_ARGS) `-n` times, one after another, and prints each run's result,
wall seconds and CPU-seconds (of pytest and everything it started), then how many passed. Each run's
output is kept in bench/repeat_tests/run-N.log. Exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(__file__).with_name("repeat_tests")
RACY = ["tests/flows/sweep/", "tests/flows/cli/test_supervision.py"]

log = logging.getLogger("bench.repeat_tests")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=5, help="runs in a row (default 5)")
    parser.add_argument("pytest_args", nargs="*", help=f"what pytest runs (default: {' '.join(RACY)})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    LOGS.mkdir(exist_ok=True)
    passed = 0
    for run in range(1, args.runs + 1):
        cpu, wall = _children_cpu(), time.perf_counter()
        with (LOGS / f"run-{run}.log").open("w") as out:
            code = subprocess.run([sys.executable, "-m", "pytest", *(args.pytest_args or RACY)], cwd=ROOT,
                                  stdout=out, stderr=subprocess.STDOUT, check=False).returncode  # fmt: skip
        cpu, wall = _children_cpu() - cpu, time.perf_counter() - wall
        summary = (LOGS / f"run-{run}.log").read_text().strip().splitlines()[-1]
        passed += code == 0
        log.info("run %d: exit %d in %.0f s, %.0f CPU-s: %s", run, code, wall, cpu, summary)
    log.info("%d of %d runs passed", passed, args.runs)
    sys.exit(0 if passed == args.runs else 1)


if __name__ == "__main__":
    main()
