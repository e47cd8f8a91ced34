"""Wall time of one 4-point sweep on 1 worker and on 2 workers (process workers on this machine).

Each configuration starts from the same commit (fetch and preprocess already computed and in the
DVC remote) with git and DVC remotes of its own, so every point trains: nothing is restored from
the other configuration. A real Prefect server on 127.0.0.1, the `fmnist-experiment` deployment
of prefect.yaml, workers started with `--limit 1`. Prints the leaderboard of each, the wall
times, the mean time of a point and the ratio. Run from the project root:

    python bench/sweep.py
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.sweep.leaderboard import format_table  # noqa: E402
from tests.flows.servers import make_team, running_prefect_server, start_worker, stop, stop_on_sigterm  # noqa: E402
from tests.helpers import DEBIAN_DATA, Project  # noqa: E402

log = logging.getLogger("bench.sweep")

# Big enough that a point takes a minute or more here: 15,000 real training images.
PARAMS = {
    "fetch": {"sources": [str(DEBIAN_DATA)]},
    "preprocess": {"train_limit": 15000, "test_limit": 2000, "val_size": 2000},
    "train_mlp": {"epochs": 4},
    "train_cnn": {"epochs": 4},
}
GRID = ["-S", "train_cnn.learning_rate=0.001,0.002", "-S", "train_cnn.dense_units=64,128"]


def main() -> None:
    stop_on_sigterm()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)  # Prefect configured it on import
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        base = Path(tmp)
        (base / "prefect").mkdir()
        with running_prefect_server(base / "prefect") as server:
            project = Project(base / "project")
            project.set_params(**PARAMS)
            project.repro("preprocess")
            project.commit("bench params, data prepared")
            walls, points = {}, {}
            for workers in (1, 2):
                team = make_team(project, server, base / f"{workers}-workers")
                team.checkout.run("prefect", "work-pool", "create", "fmnist-experiments", "--type", "process",
                                  "--overwrite", env=team.env)  # fmt: skip
                team.checkout.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment", env=team.env)
                started = [start_worker(team, "fmnist-experiments", f"machine-{i}", "--limit", "1")
                           for i in range(1, workers + 1)]  # fmt: skip
                try:
                    start = time.perf_counter()
                    team.checkout.run("python", "-m", "flows", "sweep", *GRID, "--max-parallel", "4", env=team.env)
                    walls[workers] = time.perf_counter() - start
                finally:
                    for worker in started:
                        stop(worker)
                table = team.latest_artifact("fmnist-sweep-leaderboard")
                points[workers] = [row["seconds"] for row in table]
                log.info("\n%d worker(s): %.0fs\n%s", workers, walls[workers], format_table(table))
    log.info("")
    log.info("%-9s  %9s  %15s  %13s", "workers", "wall (s)", "mean point (s)", "points at once")
    for workers, wall in walls.items():
        log.info("%-9d  %9.0f  %15.0f  %13d", workers, wall, statistics.mean(points[workers]), workers)
    log.info("2 workers / 1 worker wall time: %.2f", walls[2] / walls[1])


if __name__ == "__main__":
    main()
