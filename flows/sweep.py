"""A parameter sweep across machines: every point of a `-S` grid a DVC experiment, run by any
worker of a Prefect work pool, and a leaderboard at the end.

    checkout ── sweep ──> one child run of the experiment deployment per point (flows/experiment.py)
        ^                    on any worker: fresh clone, dvc pull --run-cache, pipeline, dvc exp push
        └── dvc exp pull <── leaderboard (Prefect table artifact, and the table the command prints)

Git carries the code, params and experiment refs; the DVC remote the data, models and run-cache;
Prefect the scheduling, logs and results. A sweep started again finds every finished point in the
DVC remote's run-cache (restored in seconds) and reruns only what failed.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.futures import PrefectFuture, as_completed

from flows import dvc_cli as dvc
from flows.experiment import FLOW_NAME as EXPERIMENT_FLOW
from flows.experiment import RESULT_KEY
from flows.params import check_keys, expand_grid
from stages.checkout import project_root

FLOW_NAME = "fmnist-sweep"
DEFAULT_DEPLOYMENT = "fmnist-experiment"
LEADERBOARD_KEY = "fmnist-sweep-leaderboard"
METRIC_COLUMNS = ("mlp_accuracy", "mlp_macro_f1", "cnn_accuracy", "cnn_macro_f1", "mlp_train_seconds",
                  "cnn_train_seconds")  # fmt: skip


class SweepError(ValueError):
    """The sweep cannot start; the message says why and what to do."""


def deployment_name(deployment: str) -> str:
    """`flow/deployment`; a bare deployment name is one of the experiment flow's."""
    return deployment if "/" in deployment else f"{EXPERIMENT_FLOW}/{deployment}"


def check_git(root: Path, git_remote: str) -> tuple[str, str]:
    """(the git remote's URL, HEAD's full SHA), once HEAD is known to be on that remote: workers
    clone the remote, so the sweep's code and params must be there, exactly as committed."""
    dirty = dvc.run(root, "git", "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if dirty:
        files = ", ".join(line[3:] for line in dirty[:3]) + (", ..." if len(dirty) > 3 else "")
        raise SweepError(f"uncommitted changes ({files}): workers run the commit as pushed; commit and push them first")
    url = dvc.run(root, "git", "remote", "get-url", git_remote, check=False).stdout.strip()
    if not url:
        raise SweepError(
            f"no git remote {git_remote!r} for workers to clone: add one with `git remote add "
            f"{git_remote} URL` (a URL every worker reaches)"
        )
    commit = dvc.run(root, "git", "rev-parse", "HEAD").stdout.strip()
    dvc.run(root, "git", "fetch", "--quiet", git_remote)
    branches = dvc.run(root, "git", "branch", "--remotes", "--contains", commit).stdout.split()
    if not any(b.startswith(f"{git_remote}/") for b in branches):
        branch = dvc.run(root, "git", "branch", "--show-current").stdout.strip() or "main"
        raise SweepError(
            f"commit {commit[:9]} is not on the git remote {git_remote} ({url}), so no worker can "
            f"clone it: push it first with `git push {git_remote} {branch}`"
        )
    return url, commit


def check_dvc_remote(root: Path) -> None:
    """Workers exchange results through the default DVC remote of the committed .dvc/config."""
    if dvc.dvc(root, "remote", "default", "--project", check=False).returncode:
        raise SweepError(
            "no default DVC remote in .dvc/config, so workers could not share results: add one with "
            "`dvc remote add -d shared URL` (a place every worker reaches), then commit and push .dvc/config"
        )


def check_deployment(deployment: str) -> str:
    """Fail when the deployment or its work pool does not exist; returns the pool's name."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise SweepError(
                f"no deployment {deployment!r} on the Prefect server: create it with "
                f"`prefect deploy --name {deployment.split('/')[-1]}` (prefect.yaml)"
            ) from None
        flow_name = client.read_flow(found.flow_id).name
        if flow_name != EXPERIMENT_FLOW:
            raise SweepError(
                f"deployment {deployment!r} runs the flow {flow_name!r}; a sweep needs a deployment of "
                f"{EXPERIMENT_FLOW!r}, such as {DEFAULT_DEPLOYMENT} (prefect.yaml)"
            )
        pool = found.work_pool_name or "(none)"
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise SweepError(
                f"work pool {pool!r} of deployment {deployment!r} does not exist: create it with "
                f"`prefect work-pool create NAME --type process` (or docker, kubernetes) and deploy again"
            ) from None
        return pool


def online_workers(pool: str) -> list[str]:
    with get_client(sync_client=True) as client:
        return [w.name for w in client.read_workers_for_work_pool(pool) if str(w.status).endswith("ONLINE")]


def sweep_name(commit: str, sets: list[str]) -> str:
    """The same grid on the same commit gets the same name, so starting it again resumes it."""
    digest = hashlib.sha256("\n".join([commit, *sorted(sets)]).encode()).hexdigest()[:6]
    return f"sweep-{digest}"


def _point_row(flow_run: Any) -> dict[str, Any]:
    """What the point's run reported (flows/experiment.py), or its state when it reported nothing."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[RESULT_KEY]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])
            )
        )
    if artifacts:
        return json.loads(artifacts[0].data)[0]
    state = flow_run.state
    message = (state.message or state.name) if state else "no state"
    return {"status": "failed", "error": f"{state.name if state else 'unknown'}: {message.splitlines()[0]}"}


# Child flow runs started by this process, so that stopping the sweep cancels them (a worker
# then stops that point's stages as a stopped `fmnist-flow run` does).
_started: dict[str, Any] = {}
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@task(cache_policy=NO_CACHE)
def run_point(deployment: str, name: str, overrides: list[str], repository: str, commit: str, jobs: int) -> dict:
    """One point as a child flow run of `deployment`, on whichever worker of its pool takes it."""
    logger = get_run_logger()
    logger.info("%s: %s", name, " ".join(overrides))
    flow_run = run_deployment(
        deployment,
        parameters={"repository": repository, "commit": commit, "name": name, "overrides": overrides, "jobs": jobs},
        flow_run_name=name,
        as_subflow=True,  # the Prefect UI shows each point under the sweep's run
        timeout=0,  # returns once created: waited for below
    )
    _started[name] = flow_run.id
    with get_client(sync_client=True) as client:
        while not (flow_run.state and flow_run.state.type.value in FINAL):
            time.sleep(2)
            flow_run = client.read_flow_run(flow_run.id)
    row = {"experiment": name, **_point_row(flow_run)}
    logger.info("%s: %s %s", name, row["status"], row.get("error") or "")
    return row


def run_points(points: dict[str, list[str]], max_parallel: int, **kwargs: Any) -> list[dict]:
    """Every point, at most `max_parallel` at once; a failed point is a row, never a lost sweep.
    Stopping the sweep cancels the points it started."""
    pending, running, rows = list(points), {}, []
    try:
        while pending or running:
            while pending and len(running) < max_parallel:
                name = pending.pop(0)
                point = run_point.with_options(task_run_name=name)
                running[point.submit(name=name, overrides=points[name], **kwargs)] = name
            done: PrefectFuture = next(as_completed(list(running)))
            name = running.pop(done)
            try:
                rows.append(done.result())
            except Exception as exc:  # noqa: BLE001 (the sweep goes on; the row says what went wrong)
                rows.append({"experiment": name, "status": "failed", "error": str(exc).splitlines()[0]})
    except BaseException as stop:  # Ctrl-C, SIGTERM, a cancellation of the sweep
        cancelled = _cancel([name for name in running.values() if name in _started])
        stop.add_note(f"interrupted: points {', '.join(cancelled) or 'none'} cancelled; start the same sweep "
                      f"again to resume (finished points are restored)")  # fmt: skip
        raise
    return rows


def _cancel(names: list[str]) -> list[str]:
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        for name in names:
            client.set_flow_run_state(_started[name], Cancelling(), force=True)
    return names


def varying_keys(points: dict[str, list[str]]) -> list[str]:
    """The params whose value differs between points, in the order the grid gives them."""
    values: dict[str, set[str]] = {}
    for overrides in points.values():
        for override in overrides:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def leaderboard(rows: list[dict], points: dict[str, list[str]], varying: list[str]) -> list[dict]:
    """One row per point, best first (CNN test accuracy, then MLP), failed points last."""
    table = []
    for row in rows:
        values = dict(o.split("=", 1) for o in points[row["experiment"]])
        table.append(
            {
                "experiment": row["experiment"],
                **{key: values[key] for key in varying},
                **{column: row.get(column) for column in METRIC_COLUMNS},
                "where": row.get("where", ""),
                "ran": row.get("ran", ""),  # stages computed for this point; "none": all restored
                "seconds": row.get("seconds"),  # the point's wall time: clone, pull, stages, push
                "status": row["status"],
                "error": row.get("error", ""),
            }
        )
    return sorted(table, key=lambda r: (r["status"] != "done", -(r["cnn_accuracy"] or 0), -(r["mlp_accuracy"] or 0)))


def format_table(rows: list[dict]) -> str:
    """The leaderboard as aligned text columns."""
    if not rows:
        return "(no points)"

    def cell(value: Any) -> str:
        if isinstance(value, float):  # accuracies and F1 to 4 digits, seconds to 1
            return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
        return "" if value is None else str(value)

    columns = list(rows[0])
    widths = {c: max(len(c), *(len(cell(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(cell(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def prepare(root: Path, sets: list[str], deployment: str, git_remote: str) -> dict[str, Any]:
    """Everything checked before any work: the grid, git, the DVC remote, the deployment."""
    grid = expand_grid(sets)
    for point in grid:
        check_keys(point, root / "params.yaml")
    check_dvc_remote(root)
    repository, commit = check_git(root, git_remote)
    pool = check_deployment(deployment)
    return {"grid": grid, "repository": repository, "commit": commit, "pool": pool}


@flow(name=FLOW_NAME)
def fmnist_sweep(
    sets: list[str],
    deployment: str = DEFAULT_DEPLOYMENT,
    max_parallel: int = 4,
    name: str | None = None,
    git_remote: str = "origin",
    jobs: int = 2,
    project: str | None = None,
) -> list[dict]:
    """Run every point of a `-S` grid as a DVC experiment on a work pool; return the leaderboard.

    Args:
        sets: `section.key=v1,v2` items, as `dvc exp run --queue -S` takes them.
        deployment: the experiment flow's deployment that runs each point (`flow/name` or `name`).
        max_parallel: at most this many points at once.
        name: the sweep's name, each point's experiment being `<name>-<n>` (default: from the
            commit and the grid, so the same sweep started again has the same names).
        git_remote: the git remote that workers clone from and push experiments to.
        jobs: stages at once within each point.
        project: the checkout the sweep starts from (default: the working directory's).
    """
    logger = get_run_logger()
    start = time.perf_counter()
    if max_parallel < 1:
        raise SweepError(f"max_parallel = {max_parallel} is not allowed; expected an integer >= 1")
    root = project_root(Path(project) if project else None)
    deployment = deployment_name(deployment)
    checked = prepare(root, sets, deployment, git_remote)
    if not online_workers(checked["pool"]):
        logger.warning(
            "no worker is polling work pool %r yet: points wait until one starts (`prefect worker start --pool %s`)",
            checked["pool"],
            checked["pool"],
        )
    name = name or sweep_name(checked["commit"], sets)
    points = {f"{name}-{i}": overrides for i, overrides in enumerate(checked["grid"], start=1)}
    logger.info(
        "%s: %d points of commit %s on deployment %s (pool %s), %d at once",
        name,
        len(points),
        checked["commit"][:9],
        deployment,
        checked["pool"],
        max_parallel,
    )
    rows = run_points(
        points,
        max_parallel,
        deployment=deployment,
        repository=checked["repository"],
        commit=checked["commit"],
        jobs=jobs,
    )
    done = [r["experiment"] for r in rows if r["status"] == "done"]
    if done:  # into the checkout the sweep started from: `dvc exp show` lists them
        dvc.dvc(root, "exp", "pull", "--force", git_remote, *done)
    table = leaderboard(rows, points, varying_keys(points))
    create_table_artifact(key=LEADERBOARD_KEY, table=table, description=f"Sweep {name}: best first")
    logger.info(
        "%s: %d of %d points done in %.0fs\n%s",
        name,
        len(done),
        len(points),
        time.perf_counter() - start,
        format_table(table),
    )
    return table
