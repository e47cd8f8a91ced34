"""The pipeline's stages as Prefect tasks: each `dvc repro --single-item STAGE`, DVC alone deciding
whether it runs, is skipped or is restored from its run-cache; at most `jobs` at once, each as soon
as its upstream stages are done; a stopped run stops them and says what a rerun resumes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from flows.plumbing import dvc, processes, remote
from flows.plumbing.network import NETWORK_RETRIES
from flows.plumbing.scheduler import Outcome, run_bounded

# Only fetch, pull and push touch the network.
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
) -> StageResult:
    """`dvc repro --single-item STAGE`, its output streamed to the run log line by line.

    `known_up_to_date`: `dvc status` found nothing changed for this stage and nothing upstream
    ran since, so `dvc repro` would only say "didn't change"; that costs a DVC start-up per
    stage, which a no-op run of the whole flow should not pay. `pull`: `dvc repro --pull`, which
    restores a stage from the remote's run-cache, fetching its outputs, when any machine already
    ran it with these params and inputs. `t0`: the flow's start (time.perf_counter()), to place
    the stage on the run's timeline.
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
    dvc.dvc_streamed(root, [*args, stage], f"stage {stage}", logger, note_status)
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
            wait_for=[futures[u] for u in sorted(graph[stage]) if u in futures],
        )  # fmt: skip
        return futures[stage]

    def done(outcome: Outcome) -> None:
        if outcome.error is not None:
            failures.append(outcome.error)
            _put_back(root, outcome.name)
        else:
            results[outcome.name] = outcome.result

    run_bounded(ready, submit, limit=jobs, on_done=done, on_stop=_interrupt)
    if failures:
        raise failures[0]
    return results


def _put_back(root: Path, stage: str) -> None:
    """A failed stage's cached outputs back as dvc.lock records them (DVC deleted them before the
    stage ran; its uncached ones the stage put back itself: stages/lib/last_run.py)."""
    back = dvc.dvc(root, "--wait-for-lock", "checkout", stage, check=False)
    restored = [line.split(maxsplit=1)[1] for line in back.stdout.splitlines() if line.startswith(("A ", "M "))]
    if restored:
        get_run_logger().info("%s failed: put back the last run's %s", stage, ", ".join(restored))


def _interrupt(stages: list[str], stop: BaseException) -> None:
    """Stop the running stages and wait for them; the message says what a rerun does."""
    logger = get_run_logger()
    logger.warning("stopping: interrupting %s", ", ".join(stages))
    processes.stop_all()
    message = (
        f"interrupted: {', '.join(stages)} stopped before finishing; their checkpoints are kept and "
        f"the next `fmnist-flow run` or `dvc repro` resumes them"
    )
    logger.error("%s", message)
    stop.add_note(message)
