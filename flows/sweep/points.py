"""A sweep's points on the work pool: each started (or found again), followed, run again when its
machine is lost, stopped when its trial is pruned, and cancelled however it stands when the sweep
stops. At most `max_parallel` at once, through the scheduler of flows/plumbing/scheduler.py.

One point is three steps: take over what an earlier start of the sweep left (`take_over`), run
with retries (`run_with_retries`), make the leaderboard's row (`make_row`). What they decide from
a run's state (`earlier`, `outcome`) are small functions of Prefect states, tested without a server.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import ArtifactSort
from prefect.deployments import run_deployment
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as this_flow_run

from flows.contract import EPOCH_EVENT, RESULT_KEY, latest_run, sweep_tag
from flows.plumbing.network import can_heal
from flows.plumbing.scheduler import Outcome, run_bounded
from flows.sweep import watch
from flows.sweep.options import HEARTBEAT_SECONDS, SweepOptions
from flows.sweep.search import Search
from flows.sweep.space import overrides

PRUNED_TAG = "fmnist-pruned"  # a trial the search stopped: no experiment, not to run again


@dataclass(frozen=True)
class Where:
    """Where a sweep's points come from and go: the same for all of them."""

    sweep: str
    repository: str
    commit: str
    pool: str
    options: SweepOptions

    @property
    def tag(self) -> str:
        return sweep_tag(self.sweep)


def point_row(client: SyncPrefectClient, flow_run: FlowRun) -> dict[str, Any]:
    """What the point's run reported last (flows/trial), or its state when it reported nothing
    final (a run that crashed, or was lost, after saying where it ran)."""
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[RESULT_KEY]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])
        ),
        sort=ArtifactSort.CREATED_DESC,
        limit=1,
    )
    row = json.loads(artifacts[0].data)[0] if artifacts else {}
    return reported_row(row, flow_run)


def reported_row(row: dict[str, Any], flow_run: FlowRun) -> dict[str, Any]:
    """The row a point's run reported, if it is final; else its state as a stopped or failed row."""
    if row.get("status") in ("done", "failed") and flow_run.state and flow_run.state.is_final():
        return row
    state = flow_run.state
    message = (state.message or state.name) if state else "no state"
    status = "stopped" if state and state.is_cancelled() else "failed"
    return {**row, "status": status, "error": f"{state.name if state else 'unknown'}: {message.splitlines()[0]}"}


# --- what a run's states decide ---

START, PRUNED, DONE, RERUN_AFTER_STOP, WAIT = "start", "pruned", "done", "rerun after its stop", "wait"


def earlier(run: FlowRun | None, reported_status: Any) -> str:
    """What the newest run of a point that an earlier start of the sweep left means for this start:
    START it (none, or one that failed or was lost), PRUNED or DONE (restored as they are), WAIT for
    it (still running), or RERUN_AFTER_STOP (an earlier stop is still cancelling it).
    `reported_status()` reads the status a completed run reported (an API call, made only then)."""
    if run is None or run.state is None:
        return START
    if PRUNED_TAG in run.tags:
        return PRUNED
    if run.state.is_completed() and reported_status() == "done":
        return DONE
    if run.state.is_cancelling():
        return RERUN_AFTER_STOP
    return WAIT if not run.state.is_final() else START


LOST, CRASHED, FINAL = "lost", "crashed", "final"


def outcome(ending: watch.Ending) -> str:
    """How a followed run ended, for the retry policy: LOST (its machine fell silent), CRASHED (its
    process was killed, or it failed because the Prefect API did not answer it: nothing of the
    point's own), else FINAL (done, failed for a reason of its own, stopped or pruned)."""
    if ending.lost_after is not None:
        return LOST
    state = ending.run.state
    if ending.stop is None and state and (state.is_crashed() or (state.is_failed() and can_heal(state.message))):
        return CRASHED
    return FINAL


# --- one point's steps ---


@dataclass
class Point:
    """One point of the sweep, as its task follows it."""

    name: str
    where: Where
    search: Search
    client: SyncPrefectClient
    logger: Any
    lost_on: list[str] = field(default_factory=list)  # machines lost while they ran it
    pruned: str | None = None  # why the search stopped it, if it did

    @property
    def values(self) -> dict[str, Any]:
        return self.search.planned[self.name]

    def row(self, run: FlowRun | None = None, reported: dict | None = None, **given: Any) -> dict[str, Any]:
        """Its row: what `run` reported (`reported`, if read already), with `given` over it."""
        if reported is None:
            reported = point_row(self.client, run) if run is not None else {}
        return {**reported, "experiment": self.name, "lost_on": ", ".join(self.lost_on), **given}

    def reported(self, run: FlowRun) -> str | None:
        """Its epochs' validation accuracy to the search; the reason to stop it, if it should be."""
        reason = None
        epochs = watch.epochs(self.client, run, EPOCH_EVENT, self.where.options.objective)
        for epoch, value in sorted(epochs.items()):
            reason = reason or self.search.report(self.name, epoch, value)
        return reason

    def start(self) -> FlowRun:
        where = self.where
        parameters = {"repository": where.repository, "commit": where.commit, "name": self.name,
                      "overrides": overrides(self.values), "jobs": where.options.jobs}  # fmt: skip
        return run_deployment(
            where.options.deployment,
            parameters=parameters,
            flow_run_name=self.name,
            tags=[where.tag],  # how a restarted sweep finds it
            job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}},
            as_subflow=True,  # the Prefect UI shows each point under the sweep's run
            timeout=0,  # returns once created: followed below
        )


def take_over(point: Point) -> tuple[dict | None, FlowRun | None]:
    """What an earlier start of the sweep left of `point`: (its row, if it is restored as it is
    (pruned, or done); the run to wait for instead of starting one, if one is still running)."""
    run = latest_run(point.client, point.name, point.where.tag)
    read: dict[str, dict] = {}

    def reported_status() -> str | None:
        read["row"] = point_row(point.client, run)
        return read["row"].get("status")

    decision = earlier(run, reported_status)
    if decision == PRUNED:
        message = (run.state.message or "") if run.state else ""
        reason = message if message.startswith("pruned") else "pruned by an earlier start of this sweep"
        return point.row(run, status="pruned", error=reason), None
    if decision == DONE:
        point.logger.info("%s: done before, by this sweep's run %s: restored", point.name, run.id)
        return point.row(run, read["row"], ran="none: done before"), None
    if decision == RERUN_AFTER_STOP:
        # Once that stop is carried out (or after stop_and_wait's bound, if its worker is gone too),
        # the point runs again.
        point.logger.info("%s: an earlier stop is cancelling its run %s: waited for, then run again", point.name,
                          run.id)  # fmt: skip
        watch.stop_and_wait(point.client, run, run.state.message or "cancelled by the stopped sweep")
        return None, None
    if decision == WAIT:
        point.logger.info("%s: its run %s is %s: waited for, not started again", point.name, run.id, run.state.name)
        return None, run
    return None, None


def run_with_retries(
    point: Point, run: FlowRun | None, stopping: threading.Event, sweep_run: Any
) -> tuple[str, FlowRun | None]:
    """Run `point` (or wait for `run`, which an earlier start left running) until it ends; run it
    again whenever its machine is lost or its process crashes, up to `--retries` times. Returns how
    it ended (FINAL, PRUNED, or LOST with no retries left) and its last run."""
    options = point.where.options
    if run is None:
        point.logger.info("%s: %s", point.name, " ".join(overrides(point.values)))

    def no_worker(seconds: float) -> None:
        point.logger.warning("%s: no worker has polled work pool %r for %.0fs: the point waits until one starts "
                             "(`prefect worker start --pool %s`)", point.name, point.where.pool, seconds,
                             point.where.pool)  # fmt: skip

    for attempt in range(options.retries + 1):
        run = run or point.start()
        try:
            ending = watch.follow(point.client, run, options, stopping, pool=point.where.pool, sweep_run=sweep_run,
                                  on_no_worker=no_worker,
                                  on_running=point.reported if point.search.pruning else None)  # fmt: skip
        except watch.Stopped:
            _cancel_if_missed(point.client, run)
            raise
        run, how = ending.run, outcome(ending)
        if ending.stop:  # pruned: stopped as a stopped run is, and tagged so that a restart knows
            point.client.update_flow_run(run.id, tags=[*run.tags, PRUNED_TAG])
            watch.stop_and_wait(point.client, run, ending.stop)
            point.logger.info("%s: %s", point.name, ending.stop)
            point.pruned = ending.stop
            return PRUNED, run
        if how == FINAL:
            return FINAL, run
        machine = point_row(point.client, run).get("where") or "an unknown machine"
        point.lost_on.append(machine)
        again = "running it again" if attempt < options.retries else "no retries left"
        if how == LOST:
            watch.mark_lost(point.client, run, machine, ending.lost_after)
            point.logger.warning("%s: lost on %s (no heartbeat for %.0fs): %s", point.name, machine,
                                 ending.lost_after, again)  # fmt: skip
        else:
            point.logger.warning("%s: crashed on %s (%s): %s", point.name, machine, run.state.message, again)
        run = None
    return LOST, None


def make_row(point: Point, how: str, run: FlowRun | None) -> dict[str, Any]:
    """The leaderboard's row of a point that ended `how`."""
    if how == LOST:
        return point.row(status="lost", error=f"lost on {', '.join(point.lost_on)}; no retries left "
                                              f"(--retries {point.where.options.retries})")  # fmt: skip
    if how == PRUNED:
        return point.row(run, status="pruned", error=point.pruned)
    row = point.row(run)
    if point.search.pruning and row.get("status") == "done":
        point.reported(run)  # every epoch, for the pruner's median: some ended between two looks
    return row


def _cancel_if_missed(client: SyncPrefectClient, run: FlowRun) -> None:
    """The sweep was stopped. Its stop cancels the runs it finds before it tells the points, so a
    run it cancelled is left to its worker; one created while it stopped was not among them, and
    would otherwise run on, unwatched, to its end."""
    run = client.read_flow_run(run.id)
    if run.state and not run.state.is_final() and not run.state.is_cancelling():
        watch.cancel(client, run)


@task(cache_policy=NO_CACHE)
def run_point(where: Where, name: str, search: Search, stopping: threading.Event, sweep_run: Any) -> dict:
    """One point as a child flow run of the deployment, on whichever worker of its pool takes it.

    A run of this point that an earlier start of the sweep left going is waited for, not started
    again, and one that finished is restored. A run whose machine is lost (or whose process
    crashed) runs again, up to `--retries` times; a point that failed for a reason of its own (a
    stage's error) does not. Its validation accuracy after each epoch goes to the search, which
    may prune it: it is then cancelled through Prefect, and is no experiment.
    """
    with get_client(sync_client=True) as client:
        point = Point(name, where, search, client, get_run_logger())
        row, run = take_over(point)
        if row is not None:
            return row
        how, run = run_with_retries(point, run, stopping, sweep_run)
        row = make_row(point, how, run)
    point.logger.info("%s: %s %s", name, row["status"], row.get("error") or "")
    return row


def run_points(where: Where, search: Search, on_ended: Callable[[str], None] | None = None) -> list[dict]:
    """Every trial of the search, at most `--max-parallel` at once; a failed trial is a row, never a
    lost sweep. Each finished trial is told to the search, and its status to `on_ended`. Stopping
    the sweep cancels its points, however they stand, and ends it within seconds."""
    stopping = threading.Event()

    def submit(name: str) -> PrefectFuture:
        return run_point.with_options(task_run_name=name).submit(where, name, search, stopping, this_flow_run.id)

    def done(outcome: Outcome) -> None:
        if isinstance(outcome.error, (watch.ApiGone, watch.SweepCancelled)):  # the whole sweep ends
            raise outcome.error
        row = outcome.result or {}
        status = {"done": "finished", "pruned": "pruned"}.get(row.get("status"), "failed")
        search.finish(outcome.name, row.get(f"{where.options.objective}_val_accuracy"), status)
        if on_ended:
            on_ended(row.get("status") or "failed")

    def stop(running: list[str], why: BaseException) -> None:
        how = {}
        try:
            if isinstance(why, watch.ApiGone):
                return
            with get_client(sync_client=True) as client:
                for name in running:
                    flow_run = latest_run(client, name, where.tag)
                    if flow_run is not None:
                        how[name] = watch.cancel(client, flow_run)
        finally:
            # Then the points' tasks stop waiting: a run created meanwhile, which this pass could not
            # find, its task cancels (_cancel_if_missed); the ones cancelled here it leaves alone.
            stopping.set()
        said = ", ".join(f"{name} {state}" for name, state in how.items()) or "none running"
        why.add_note(f"interrupted: points {said}; start the same sweep again to resume (finished points are "
                     f"restored)")  # fmt: skip

    def row(outcome: Outcome) -> dict:
        if outcome.error is None:
            return outcome.result
        return {"experiment": outcome.name, "status": "failed", "error": str(outcome.error).splitlines()[0]}

    outcomes = run_bounded(search.names, submit, limit=where.options.max_parallel, on_done=done, on_stop=stop)
    return [row(outcome) for outcome in outcomes]
