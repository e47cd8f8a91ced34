"""A sweep across machines: every trial a DVC experiment, run by any worker of a Prefect work pool,
the trials a grid's points or drawn by Optuna (random, TPE), hopeless ones pruned, and a leaderboard.

    checkout ── sweep ──> one child run of the experiment deployment per trial (flows/experiment.py)
        ^                    on any worker: fresh clone, dvc pull --run-cache, pipeline, dvc exp push
        │    └── Optuna <── each epoch's validation accuracy (events), each trial's kept-epoch score
        └── dvc exp pull <── leaderboard (Prefect table artifact, and the table the command prints)

Git carries the code, params and experiment refs; the DVC remote the data, models and run-cache;
Prefect the scheduling, logs and results. The same command started again continues: the study is
rebuilt from the sweep's DVC experiments and its runs on Prefect, finished trials are restored and
running ones waited for. Before any work: flows/preflight.py; the points on the pool:
flows/points.py; the search: flows/search.py; the leaderboard: flows/leaderboard.py.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.states import Cancelled

from flows import dvc_cli as dvc
from flows import earlier, watch
from flows.compare import CompareError, test_answers
from flows.leaderboard import format_table, leaderboard, seed_groups, varying_keys
from flows.points import Where, run_points
from flows.preflight import DEFAULT_DEPLOYMENT, deployment_name, online_workers, prepare
from flows.search import Search
from flows.space import overrides
from stages.lib.checkout import project_root
from stages.lib.params import require_integer

FLOW_NAME = "fmnist-sweep"
LEADERBOARD_KEY = "fmnist-sweep-leaderboard"
GROUPS_KEY = "fmnist-sweep-seed-groups"


def sweep_name(commit: str, sets: list[str], search: str = "grid", seed: int = 0, objective: str = "cnn") -> str:
    """The same search on the same commit gets the same name, so starting it again resumes it."""
    parts = [commit, *sorted(sets)] + ([] if search == "grid" else [f"{search} seed {seed} objective {objective}"])
    return f"sweep-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:6]}"


@flow(name=FLOW_NAME)
def fmnist_sweep(
    sets: list[str],
    deployment: str = DEFAULT_DEPLOYMENT,
    max_parallel: int = 4,
    name: str | None = None,
    git_remote: str = "origin",
    jobs: int = 2,
    project: str | None = None,
    retries: int = 2,
    lost_after: float = 120.0,
    api_outage: float = 90.0,
    search: str = "grid",
    trials: int | None = None,
    seed: int = 0,
    objective: str = "cnn",
    prune: str | None = None,
    prune_after: int = 2,
) -> list[dict]:
    """Run a sweep's trials as DVC experiments on a work pool; return the leaderboard.

    Args:
        sets: `section.key=values` items, as `dvc exp run -S` takes them, with Hydra's choice(),
            range(), interval() and tag(log, ...).
        deployment: the experiment flow's deployment that runs each trial (`flow/name` or `name`).
        max_parallel: at most this many trials at once.
        name: the sweep's name, each trial's experiment being `<name>-<n>` (default: from the
            commit and the search, so the same sweep started again has the same names).
        git_remote: the git remote that workers clone from and push experiments to.
        jobs: stages at once within each trial.
        project: the checkout the sweep starts from (default: the working directory's).
        retries: runs again of a trial whose machine was lost.
        lost_after: seconds without a heartbeat from a running trial before it is declared lost.
        api_outage: seconds the Prefect API may not answer before the sweep stops (start it again to resume).
        search: grid (every listed point), random or tpe (Optuna's TPE, seeded by `seed`).
        trials: how many trials random and TPE draw.
        seed: seeds the search.
        objective: the model (cnn or mlp) whose validation accuracy at its kept epoch is maximised.
        prune: median (stop a trial below the median of finished ones at the same epoch) or none;
            default median for random and tpe, none for grid.
        prune_after: trials that must finish before any is pruned.
    """
    logger = get_run_logger()
    start = time.perf_counter()
    for key, value, minimum in (("max_parallel", max_parallel, 1), ("retries", retries, 0),
                                ("prune_after", prune_after, 1)):  # fmt: skip
        require_integer(key, value, minimum)
    root = project_root(Path(project) if project else None)
    deployment = deployment_name(deployment)
    checked = prepare(root, sets, deployment, git_remote, search=search, trials=trials, objective=objective)
    if not online_workers(checked.pool):
        logger.warning(
            "no worker is polling work pool %r yet: points wait until one starts (`prefect worker start --pool %s`)",
            checked.pool,
            checked.pool,
        )
    name = name or sweep_name(checked.commit, sets, search, seed, objective)
    study = Search(name, checked.dimensions, method=search, trials=trials, seed=seed,
                   prune=prune or ("none" if search == "grid" else "median"), prune_after=prune_after)  # fmt: skip
    where = Where(name, deployment, checked.repository, checked.commit, jobs, checked.pool, objective)
    restored = earlier.finished(root, name, checked.commit, git_remote, checked.dimensions, objective)
    with get_client(sync_client=True) as client:
        restored += earlier.on_prefect(client, where.tag, {r.name for r in restored}, objective)
    study.restore(restored)
    logger.info(
        "%s: %s search, %d trials of commit %s on deployment %s (pool %s), %d at once%s",
        *(name, search, study.budget, checked.commit[:9], deployment, checked.pool, max_parallel),
        f"; {len(restored)} from an earlier start" if restored else "",
    )
    faults = watch.Faults(lost_after=lost_after, retries=retries, api_outage=api_outage)
    try:
        rows = run_points(where, study, max_parallel, faults)
    except watch.SweepCancelled as exc:  # the notes say what became of each point
        return Cancelled(message=" ".join([str(exc), *getattr(exc, "__notes__", [])]))
    done = [r["experiment"] for r in rows if r["status"] == "done"]
    test = None
    if done:  # into the checkout the sweep started from: `dvc exp show` lists them
        dvc.dvc(root, "exp", "pull", "--force", git_remote, *done)
        test = _test_answers(root, done, logger)
    grid = {trial: overrides(point) for trial, point in study.planned.items()}
    varying = varying_keys(grid)
    table = leaderboard(rows, grid, varying, test, objective)
    create_table_artifact(key=LEADERBOARD_KEY, table=table, description=f"Sweep {name}: best first")
    logger.info(
        "%s: %d of %d trials done in %.0fs\n%s",
        *(name, len(done), len(rows), time.perf_counter() - start, format_table(table)),
    )
    groups = seed_groups(table, varying)
    if groups:
        create_table_artifact(key=GROUPS_KEY, table=groups, description=f"Sweep {name}: points differing in seeds only")
        logger.info("%s: the points that differ only in their seeds, as groups:\n%s", name, format_table(groups))
    return table


def _test_answers(root: Path, names: list[str], logger: Any) -> tuple | None:
    """The finished points' test predictions (from the DVC remote), for the leaderboard's statistics."""
    try:
        return test_answers(root, names)
    except (CompareError, RuntimeError) as exc:
        logger.warning("no intervals on the leaderboard: %s", str(exc).splitlines()[0])
        return None
