"""A team's Prefect server under load: 24 tiny points over 4 process workers, on SQLite and on
PostgreSQL. Records the wall time, the per-point overhead and every error seen (in the server's
and the workers' logs, and in the sweep's output: a "database is locked" is a failure).

Each database gets a server of its own (PostgreSQL: a cluster started here, as the tests do), its
own git and DVC remotes, and the same commit with fetch and preprocess already computed. A point
trains both models for one epoch on 1,500 images, so most of its time is the point's fixed cost.

    python bench/sweep_load.py [--points 24] [--workers 4]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.flows.servers import (  # noqa: E402
    make_team,
    running_postgres,
    running_prefect_server,
    start_worker,
    stop,
    stop_on_sigterm,
)
from tests.helpers import TINY_PARAMS, Project  # noqa: E402

log = logging.getLogger("bench.sweep_load")
ERRORS = re.compile(r"database is locked|Traceback|\bERROR\b|\bCRITICAL\b|OperationalError|TimeoutError|Crashed")


def run(database: str, base: Path, project: Project, points: int, workers: int) -> dict:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(running_postgres()) if database == "postgresql" else None
        (base / "prefect").mkdir(parents=True)
        server = stack.enter_context(running_prefect_server(base / "prefect", url))
        team = make_team(project, server, base / "team")
        team.checkout.run("prefect", "work-pool", "create", "fmnist-experiments", "--type", "process", "--overwrite",
                          env=team.env)  # fmt: skip
        team.checkout.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment", env=team.env)
        started = [start_worker(team, "fmnist-experiments", f"machine-{i}", "--limit", "1")
                   for i in range(1, workers + 1)]  # fmt: skip
        try:
            start = time.perf_counter()
            sweep = team.checkout.run("python", "-m", "flows", "sweep", "-S", f"train_mlp.seed=range(1,{points + 1})",
                                      "--max-parallel", str(workers), env=team.env, check=False)  # fmt: skip
            wall = time.perf_counter() - start
        finally:
            for worker in started:
                stop(worker)
        table = team.latest_artifact("fmnist-sweep-leaderboard")
        logs = {"server": (base / "prefect" / "server.log").read_text(), "sweep": sweep.stdout + sweep.stderr}
        logs |= {f"machine-{i}": (team.base / f"machine-{i}" / "worker.log").read_text() for i in range(1, workers + 1)}
    errors = [f"{where}: {line.strip()[:160]}" for where, text in logs.items() for line in text.splitlines()
              if ERRORS.search(line)]  # fmt: skip
    done = [row for row in table if row["status"] == "done"]
    # A point's overhead: its wall time (clone, pull, stages, push, experiment) less its two trainings.
    overhead = [r["seconds"] - r["mlp_train_seconds"] - r["cnn_train_seconds"] for r in done]
    return {
        "database": database, "wall": wall, "done": len(done), "points": points, "exit": sweep.returncode,
        "point": statistics.median(r["seconds"] for r in done) if done else 0.0,
        "overhead": statistics.median(overhead) if done else 0.0, "errors": errors,
    }  # fmt: skip


def main() -> None:
    stop_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-load-") as tmp:
        project = Project(Path(tmp) / "project")
        project.set_params(**TINY_PARAMS)
        project.repro("preprocess")
        project.commit("tiny params, data prepared")
        for database in ("sqlite", "postgresql"):
            results.append(run(database, Path(tmp) / database, project, args.points, args.workers))
            log.info("%s: %s", database, {k: v for k, v in results[-1].items() if k != "errors"})
    log.info("")
    log.info("| database | points done | wall (s) | median point (s) | its overhead (s) | exit | errors |")
    log.info("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        log.info("| %s | %d of %d | %.0f | %.0f | %.0f | %d | %d |", r["database"], r["done"], r["points"], r["wall"],
                 r["point"], r["overhead"], r["exit"], len(r["errors"]))  # fmt: skip
    for r in results:
        for error in r["errors"][:20]:
            log.info("%s: %s", r["database"], error)


if __name__ == "__main__":
    main()
