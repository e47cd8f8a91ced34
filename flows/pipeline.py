"""The Prefect flow over dvc.yaml: one task per DVC stage, DVC deciding what runs.

Each task runs `dvc repro --single-item STAGE`, so DVC alone decides whether a stage runs, is
skipped or is restored from its run-cache, and DVC alone writes dvc.lock: the flow and
`dvc repro` share one cache and one record. The command line is in flows/cli.py.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from flows import dvc_cli as dvc
from flows import processes, remote
from flows.overrides import apply_overrides
from flows.scheduler import Outcome, run_bounded
from stages.lib import eta, paths
from stages.lib.checkout import project_root
from stages.lib.params import require_integer

FLOW_NAME = "fmnist-pipeline"
# Only fetch, pull and push touch the network, and of their failures only what can heal is retried:
# a timeout, a refused or reset connection, a busy server; not a wrong path, a bad param or a bug.
_TRANSIENT = re.compile(
    r"timed? ?out|timeout|connection|temporar|unreachable|reset by peer|network|\b(429|502|503|504)\b", re.I
)


def can_heal(message: str) -> bool:
    """Whether a failure, by its message, is one that may heal: a network or a server that did not answer."""
    return bool(_TRANSIENT.search(message or ""))


def _can_heal(task: Any, task_run: Any, state: Any) -> bool:
    return can_heal(state.message)


NETWORK_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 5, 15], "retry_condition_fn": _can_heal}
RETRIES = {"fetch": NETWORK_RETRIES}

_STATUS = (
    (re.compile(r"^Running stage '(?P<stage>[^']+)'"), "ran"),
    (re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run"), "restored"),
    (re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping"), "skipped"),
)


@dataclass
class StageResult:
    stage: str
    status: str  # ran | skipped | restored
    seconds: float
    started: float = 0.0  # seconds after the flow began: overlapping stages ran at the same time


# No Prefect caching: whether a stage needs to run is DVC's decision alone.
@task(cache_policy=NO_CACHE)
def repro_stage(
    root: Path,
    stage: str,
    force: bool = False,
    known_up_to_date: bool = False,
    pull: bool = False,
    t0: float = 0.0,
    env: dict[str, str] | None = None,
) -> StageResult:
    """`dvc repro --single-item STAGE`, its output streamed to the run log line by line.

    `known_up_to_date`: `dvc status` found nothing changed for this stage and nothing upstream
    ran since, so `dvc repro` would only say "didn't change"; that costs a DVC start-up per
    stage, which a no-op run of the whole flow should not pay. `pull`: `dvc repro --pull`, which
    restores a stage from the remote's run-cache, fetching its outputs, when any machine already
    ran it with these params and inputs. `t0`: the flow's start (time.perf_counter()), to place
    the stage on the run's timeline. `env`: added to the stage's environment.
    """
    logger = get_run_logger()
    start = time.perf_counter()
    if known_up_to_date and not force:
        logger.info("Stage '%s' didn't change, skipping (dvc status)", stage)
        return StageResult(stage, "skipped", 0.0, round(start - t0, 2))
    status = "skipped"

    def note_status(line: str) -> None:
        nonlocal status
        for pattern, name in _STATUS:
            match = pattern.match(line)
            if match and match["stage"] == stage:
                status = name

    # --wait-for-lock: a stage running beside this one holds DVC's repo lock only while it
    # starts and while it records its results, and this one waits for those moments to pass.
    args = ["--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []), *(["--pull"] if pull else [])]
    dvc.dvc_streamed(root, [*args, stage], f"stage {stage}", logger, note_status, env)
    return StageResult(stage, status, round(time.perf_counter() - start, 2), round(start - t0, 2))


@task(name="dvc-pull", cache_policy=NO_CACHE, **NETWORK_RETRIES)
def pull_artifacts(root: Path) -> None:
    """What any machine already computed: outputs and run-cache from the default remote."""
    remote.pull(root, get_run_logger())


@task(name="dvc-push", cache_policy=NO_CACHE, **NETWORK_RETRIES)
def push_artifacts(root: Path) -> None:
    """This run's outputs and run-cache to the default remote, for every other clone and worker."""
    remote.share(root, get_run_logger())


def run_stages(
    root: Path,
    graph: dict[str, set[str]],
    order: list[str],
    changed: set[str],
    *,
    force: bool,
    jobs: int,
    pull: bool = False,
    t0: float = 0.0,
    env: dict[str, str] | None = None,
) -> dict[str, StageResult]:
    """Reproduce `order`'s stages, each as soon as its upstream stages are done, at most `jobs` at once.

    When a stage fails, the stages already running finish (their results land in dvc.lock),
    none is started after it, and its error is raised.
    """
    results: dict[str, StageResult] = {}
    futures: dict[str, PrefectFuture] = {}
    failures: list[Exception] = []

    def ready() -> list[str]:
        return [] if failures else [s for s in order if all(u in results for u in graph[s])]

    def submit(stage: str) -> PrefectFuture:
        upstream_ran = any(results[u].status != "skipped" for u in graph[stage])
        run = repro_stage.with_options(name=stage, task_run_name=stage, **RETRIES.get(stage, {}))
        # The upstream stages are done already (that is when a stage is submitted); wait_for
        # records them as its inputs, which draws dvc.yaml's DAG in Prefect's graph.
        futures[stage] = run.submit(
            root, stage, force, known_up_to_date=stage not in changed and not upstream_ran, pull=pull, t0=t0,
            env=env, wait_for=[futures[u] for u in sorted(graph[stage]) if u in futures],
        )  # fmt: skip
        return futures[stage]

    def done(outcome: Outcome) -> None:
        if outcome.error is not None:
            failures.append(outcome.error)
        else:
            results[outcome.name] = outcome.result

    run_bounded(ready, submit, limit=jobs, on_done=done, on_stop=lambda names, stop: _interrupt(root, names, stop))
    if failures:
        raise failures[0]
    return results


def _interrupt(root: Path, stages: list[str], stop: BaseException) -> None:
    """Stop the running stages and wait for them; the message says what a rerun does."""
    logger = get_run_logger()
    logger.warning("stopping: interrupting %s", ", ".join(stages))
    processes.stop_all()
    if dvc.heal_rwlock(root):  # a DVC that had to be killed may have left its lock table cut short
        logger.warning("%s was left unreadable by a killed DVC: removed", dvc.RWLOCK)
    message = (
        f"interrupted: {', '.join(stages)} stopped before finishing; their checkpoints are kept and "
        f"the next `fmnist-flow run` or `dvc repro` resumes them"
    )
    logger.error("%s", message)
    stop.add_note(message)


def metrics_markdown(path: Path) -> str | None:
    """The MLP vs CNN table from evaluate's metrics, or None before evaluate has run."""
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    models = [m for m in paths.MODELS if m in metrics]
    rows = [
        "| metric | " + " | ".join(m.upper() for m in models) + " |",
        "|---|" + "---:|" * len(models),
        *(
            f"| {key} | " + " | ".join(f"{metrics[m][key]:.4f}" for m in models) + " |"
            for key in ("accuracy", "loss", "macro_f1")
        ),
    ]
    return "## Fashion-MNIST test metrics\n\n" + "\n".join(rows) + "\n"


@flow(name=FLOW_NAME)
def fmnist_pipeline(
    targets: list[str] | None = None,
    force: bool = False,
    overrides: list[str] | None = None,
    jobs: int = 2,
    pull: bool = False,
    push: bool = False,
    project: str | None = None,
) -> list[dict[str, Any]]:
    """Reproduce the DVC pipeline, independent stages (train-mlp, train-cnn) at the same time.

    Args:
        targets: stages to reproduce, with everything upstream of them (default: all).
        force: rerun every selected stage even if DVC finds it up to date.
        overrides: `section.key=value` params written into params.yaml first, as `dvc exp run -S`.
        jobs: at most this many stages at once; 1 runs them one after another, as `dvc repro` does.
        pull: take from the default DVC remote whatever any machine already computed: first
            `dvc pull --run-cache`, then each stage with `dvc repro --pull`.
        push: finally send outputs and run-cache to the default DVC remote (`dvc push --run-cache`).
        project: the checkout to reproduce (default: the one the run's working directory is in).
    """
    logger = get_run_logger()
    t0 = time.perf_counter()
    require_integer("jobs", jobs, 1)
    root = project_root(Path(project) if project else None)
    if dvc.heal_rwlock(root):  # left unreadable by a DVC killed mid-write, it would fail every stage
        logger.warning("%s was left unreadable by a killed DVC: removed", dvc.RWLOCK)
    if pull or push:
        remote.check_remote(root)
    apply_overrides(overrides or [], root / "params.yaml")
    if pull:
        pull_artifacts(root)
    with ThreadPoolExecutor(2) as pool:  # two DVC start-ups at once: a no-op run is mostly start-ups
        graph_future, changed_future = pool.submit(dvc.stage_graph, root), pool.submit(dvc.changed_stages, root)
        graph, changed = graph_future.result(), changed_future.result()
    # The training stages' last recorded times, kept before DVC removes them: their epoch lines
    # say how long the run has left (stages/lib/eta.py).
    with tempfile.NamedTemporaryFile("w", prefix="fmnist-recorded-", suffix=".json") as record:
        json.dump(eta.recorded(root), record)
        record.flush()
        results = run_stages(root, graph, dvc.plan(graph, targets), changed, force=force, jobs=jobs, pull=pull, t0=t0,
                             env={eta.RECORDED: record.name})  # fmt: skip
    if push:
        push_artifacts(root)
    rows = [asdict(r) for r in results.values()]
    width = max(len(r["stage"]) for r in rows)
    logger.info(
        "summary (%.1fs, up to %d stages at once):\n%s",
        time.perf_counter() - t0,
        jobs,
        "\n".join(
            f"  {r['stage']:<{width}}  {r['status']:<8}  {r['seconds']:7.1f}s  (from {r['started']:.1f}s)" for r in rows
        ),
    )
    create_table_artifact(key="fmnist-stages", table=rows, description="Each DVC stage: ran, skipped or restored")
    markdown = metrics_markdown(paths.in_checkout(paths.EVALUATION, root))
    if markdown:
        create_markdown_artifact(key="fmnist-metrics", markdown=markdown, description="MLP vs CNN on the test split")
    return rows
