"""A sweep across machines: every trial a DVC experiment, run by any worker of a Prefect work pool,
the trials a grid's points or drawn by Optuna (random, TPE), hopeless ones pruned, and a leaderboard.

    checkout ── sweep ──> one child run of the experiment deployment per trial (flows/trial)
        ^                    on any worker: fresh clone, dvc pull --run-cache, pipeline, dvc exp push
        │    └── Optuna <── each epoch's validation accuracy (events), each trial's kept-epoch score
        └── dvc exp pull <── leaderboard (a DataFrame: the CSV, Prefect's table artifact, the printed table)

Git carries the code, params and experiment refs; the DVC remote the data, models and run-cache;
Prefect the scheduling, logs and results. The same command started again continues: the study is
rebuilt from the sweep's DVC experiments and its runs on Prefect, finished trials are restored and
running ones waited for. Its options: options.py; before any work: preflight.py; the points on
the pool: points.py (watch.py for lost machines, progress.py for the progress artifact); the
search: space.py and search.py; the leaderboard: leaderboard.py; the search's pictures: pictures.py.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.states import Cancelled

from flows.compare.result import CompareError, test_answers
from flows.plumbing import dvc
from flows.sweep import earlier, pictures, watch
from flows.sweep.leaderboard import format_groups, format_table, leaderboard, seed_groups, varying_keys, write_csv
from flows.sweep.options import SweepOptions
from flows.sweep.points import Where, run_points
from flows.sweep.preflight import Checked
from flows.sweep.progress import Progress
from flows.sweep.search import Search
from flows.sweep.space import overrides
from tools.checkout import project_root

FLOW_NAME = "fmnist-sweep"
LEADERBOARD_KEY = "fmnist-sweep-leaderboard"
GROUPS_KEY = "fmnist-sweep-seed-groups"
PROGRESS_KEY = "fmnist-sweep-progress"
PICTURES_KEY = "fmnist-sweep-pictures"


def sweep_name(commit: str, sets: list[str], search: str = "grid", seed: int = 0, objective: str = "cnn") -> str:
    """The same search on the same commit gets the same name, so starting it again resumes it."""
    parts = [commit, *sorted(sets)] + ([] if search == "grid" else [f"{search} seed {seed} objective {objective}"])
    return f"sweep-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:6]}"


@flow(name=FLOW_NAME, validate_parameters=False)  # checked where they were made: SweepOptions, prepare
def fmnist_sweep(options: SweepOptions, checked: Checked, project: str | None = None) -> pd.DataFrame:
    """Run a sweep's trials as DVC experiments on a work pool; return the leaderboard.

    Args:
        options: what the sweep may do (`fmnist-flow sweep`'s options), checked.
        checked: what `preflight.prepare` found: the search space, the git remote and commit that
            workers clone, the deployment's work pool.
        project: the checkout the sweep starts from (default: the working directory's).
    """
    logger = get_run_logger()
    start = time.perf_counter()
    root = project_root(Path(project) if project else None)
    with get_client(sync_client=True) as client:
        if not watch.online_workers(client, checked.pool):
            logger.warning("no worker is polling work pool %r yet: points wait until one starts "
                           "(`prefect worker start --pool %s`)", checked.pool, checked.pool)  # fmt: skip
    name = options.name or sweep_name(checked.commit, list(options.sets), options.search, options.seed,
                                      options.objective)  # fmt: skip
    study = Search(name, checked.dimensions, method=options.search, trials=options.trials, seed=options.seed,
                   prune=options.prune, prune_after=options.prune_after)  # fmt: skip
    where = Where(name, checked.repository, checked.commit, checked.pool, options)
    restored = earlier.finished(root, name, checked.commit, options.git_remote, checked.dimensions, options.objective)
    with get_client(sync_client=True) as client:
        restored += earlier.on_prefect(client, where.tag, {r.name for r in restored}, options.objective)
    study.restore(restored)
    logger.info(
        "%s: %s search, %d trials of commit %s on deployment %s (pool %s), %d at once%s",
        *(name, options.search, study.budget, checked.commit[:9], options.deployment, checked.pool),
        options.max_parallel, f"; {len(restored)} from an earlier start" if restored else "",
    )  # fmt: skip
    progress = Progress(PROGRESS_KEY, study.budget, name, logger)
    try:
        rows = run_points(where, study, on_ended=progress.ended_one)
    except watch.SweepCancelled as exc:  # the notes say what became of each point
        return Cancelled(message=" ".join([str(exc), *getattr(exc, "__notes__", [])]))
    done = [r["experiment"] for r in rows if r["status"] == "done"]
    test = None
    if done:  # into the checkout the sweep started from: `dvc exp show` lists them
        dvc.dvc(root, "exp", "pull", "--force", options.git_remote, *done)
        test = _test_answers(root, done, logger)
    grid = {trial: overrides(point) for trial, point in study.planned.items()}
    varying = varying_keys(grid)
    table = leaderboard(rows, grid, varying, test, options.objective)
    csv = options.leaderboard_csv(root, name)
    write_csv(table, csv)
    create_table_artifact(key=LEADERBOARD_KEY, table=table.to_dict("records"), description=f"Sweep {name}: best first")
    logger.info(
        "%s: %d of %d trials done in %.0fs; every column in %s\n%s",
        *(name, len(done), len(rows), time.perf_counter() - start, csv, format_table(table, options.objective)),
    )
    pictures.publish(study.study, list(study.distributions), f"{options.objective}_val_accuracy", csv, PICTURES_KEY,
                     logger)  # fmt: skip
    groups = seed_groups(table, varying, options.objective)
    if not groups.empty:
        create_table_artifact(key=GROUPS_KEY, table=groups.to_dict("records"),
                              description=f"Sweep {name}: points differing in seeds only")  # fmt: skip
        logger.info("%s: the points that differ only in their seeds, as groups:\n%s", name,
                    format_groups(groups, options.objective))  # fmt: skip
    return table


def _test_answers(root: Path, names: list[str], logger: Any) -> tuple | None:
    """The finished points' test predictions (from the DVC remote), for the leaderboard's statistics."""
    try:
        return test_answers(root, names)
    except (CompareError, RuntimeError) as exc:
        logger.warning("no intervals on the leaderboard: %s", str(exc).splitlines()[0])
        return None
