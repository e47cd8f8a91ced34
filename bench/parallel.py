"""Wall time of the whole pipeline with the flow running one stage at a time vs two at once.

Runs the Prefect flow twice on this checkout with `force=True` (every stage reruns, on the
default params unless params.yaml says otherwise): first `jobs=1`, one stage after another as
`dvc repro` does, then `jobs=2`, train-mlp beside train-cnn. Prints each stage's seconds and
start, both wall times and their ratio. The workspace is left as the second run wrote it, a
normal reproduced state (`dvc status` clean). Run from the project root:

    python bench/parallel.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

log = logging.getLogger("bench.parallel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="stages at once in the parallel run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.pop("PREFECT_API_URL", None)  # Prefect's ephemeral server, as `fmnist-flow run` without setup
    from flows.pipeline.flow import fmnist_pipeline  # after the environment above: Prefect reads it on import

    walls, rows = {}, {}
    for jobs in (1, args.jobs):
        start = time.perf_counter()
        rows[jobs] = {r["stage"]: r for r in fmnist_pipeline(force=True, jobs=jobs)}
        walls[jobs] = time.perf_counter() - start
    seq, par = rows[1], rows[args.jobs]
    log.info("")
    log.info("%-11s  %21s  %21s", "", "jobs=1", f"jobs={args.jobs}")
    log.info("%-11s  %10s %10s  %10s %10s", "stage", "seconds", "started", "seconds", "started")
    for stage in seq:
        a, b = seq[stage], par[stage]
        log.info("%-11s  %10.1f %10.1f  %10.1f %10.1f", stage, a["seconds"], a["started"], b["seconds"], b["started"])
    log.info("%-11s  %10.1f %10s  %10.1f", "wall time", walls[1], "", walls[args.jobs])
    log.info("parallel / sequential wall time: %.2f", walls[args.jobs] / walls[1])


if __name__ == "__main__":
    main()
