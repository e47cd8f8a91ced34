"""A sweep's points on the work pool: each started (or found again), followed, run again when its
machine is lost, stopped when its trial is pruned, and cancelled however it stands when the sweep
stops. At most `max_parallel` at once, through the one scheduler of flows/scheduler.py."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
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

from flows import watch
from flows.experiment import EPOCH_EVENT, RESULT_KEY
from flows.pipeline import can_heal
from flows.scheduler import Outcome, run_bounded
from flows.search import Search
from flows.space import overrides

PRUNED_TAG = "fmnist-pruned"  # a trial the search stopped: no experiment, not to run again


@dataclass(frozen=True)
class Where:
    """Where a sweep's points come from and go: the same for all of them."""

    sweep: str
    deployment: str
    repository: str
    commit: str
    jobs: int
    pool: str
    objective: str  # the model whose validation accuracy a trial reports

    @property
    def tag(self) -> str:
        return watch.sweep_tag(self.sweep)


def point_row(client: SyncPrefectClient, flow_run: FlowRun) -> dict[str, Any]:
    """What the point's run reported last (flows/experiment.py), or its state when it reported
    nothing final (a run that crashed, or was lost, after saying where it ran)."""
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[RESULT_KEY]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])
        ),
        sort=ArtifactSort.CREATED_DESC,
        limit=1,
    )
    row = json.loads(artifacts[0].data)[0] if artifacts else {}
    if row.get("status") in ("done", "failed") and flow_run.state and flow_run.state.is_final():
        return row
    state = flow_run.state
    message = (state.message or state.name) if state else "no state"
    status = "stopped" if state and state.is_cancelled() else "failed"
    return {**row, "status": status, "error": f"{state.name if state else 'unknown'}: {message.splitlines()[0]}"}


def _start(where: Where, name: str, point: dict[str, Any]) -> FlowRun:
    parameters = {"repository": where.repository, "commit": where.commit, "name": name,
                  "overrides": overrides(point), "jobs": where.jobs}  # fmt: skip
    return run_deployment(
        where.deployment,
        parameters=parameters,
        flow_run_name=name,
        tags=[where.tag],  # how a restarted sweep finds it
        job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(watch.HEARTBEAT_SECONDS)}},
        as_subflow=True,  # the Prefect UI shows each point under the sweep's run
        timeout=0,  # returns once created: followed below
    )


def _cancel_if_missed(client: SyncPrefectClient, run: FlowRun, faults: watch.Faults) -> None:
    """The sweep was stopped. Its stop cancels the runs it finds before it tells the points, so a
    run it cancelled is left to its worker; one created while it stopped was not among them, and
    would otherwise run on, unwatched, to its end."""
    run = client.read_flow_run(run.id)
    if run.state and not run.state.is_final() and not run.state.is_cancelling():
        watch.cancel(client, run, faults)


@task(cache_policy=NO_CACHE)
def run_point(
    where: Where, name: str, search: Search, faults: watch.Faults, stopping: threading.Event, sweep_run: Any
) -> dict:
    """One point as a child flow run of the deployment, on whichever worker of its pool takes it.

    A run of this point that an earlier start of the sweep left going is waited for, not started
    again, and one that finished is restored. A run whose machine is lost (or whose process
    crashed) runs again, up to `faults.retries` times; a point that failed for a reason of its
    own (a stage's error) does not. Its validation accuracy after each epoch goes to the search,
    which may prune it: it is then cancelled through Prefect, and is no experiment.
    """
    logger = get_run_logger()
    point = search.planned[name]
    lost_on: list[str] = []
    with get_client(sync_client=True) as client:
        flow_run = watch.latest_run(client, name, where.tag)
        if flow_run is not None and PRUNED_TAG in flow_run.tags:
            message = flow_run.state.message or "" if flow_run.state else ""
            reason = message if message.startswith("pruned") else "pruned by an earlier start of this sweep"
            return {**point_row(client, flow_run), "experiment": name, "status": "pruned", "error": reason,
                    "lost_on": ""}  # fmt: skip
        if flow_run is not None and flow_run.state and flow_run.state.is_completed():
            row = point_row(client, flow_run)
            if row.get("status") == "done":
                logger.info("%s: done before, by this sweep's run %s: restored", name, flow_run.id)
                return {**row, "experiment": name, "ran": "none: done before", "lost_on": ""}
        if flow_run is not None and flow_run.state and flow_run.state.is_cancelling():
            # An earlier start's stop, still being carried out by its worker: once it has been
            # (or after stop_and_wait's bound, if that worker is gone too), the point runs again.
            logger.info("%s: an earlier stop is cancelling its run %s: waited for, then run again", name, flow_run.id)
            watch.stop_and_wait(client, flow_run, flow_run.state.message or "cancelled by the stopped sweep")
            flow_run = None
        if flow_run is not None and flow_run.state and not flow_run.state.is_final():
            logger.info("%s: its run %s is %s: waited for, not started again", name, flow_run.id, flow_run.state.name)
        else:
            logger.info("%s: %s", name, " ".join(overrides(point)))
            flow_run = None

        def reported(run: FlowRun) -> str | None:
            reason = None
            for epoch, value in sorted(watch.epochs(client, run, EPOCH_EVENT, where.objective).items()):
                reason = reason or search.report(name, epoch, value)
            return reason

        def no_worker(seconds: float) -> None:
            logger.warning("%s: no worker has polled work pool %r for %.0fs: the point waits until one starts "
                           "(`prefect worker start --pool %s`)", name, where.pool, seconds, where.pool)  # fmt: skip

        for attempt in range(faults.retries + 1):
            flow_run = flow_run or _start(where, name, point)
            try:
                ending = watch.follow(client, flow_run, faults, stopping, pool=where.pool, sweep_run=sweep_run,
                                      on_no_worker=no_worker,
                                      on_running=reported if search.pruning else None)  # fmt: skip
            except watch.Stopped:
                _cancel_if_missed(client, flow_run, faults)
                raise
            flow_run = ending.run
            if ending.stop:  # pruned: stopped as a stopped run is, and tagged so that a restart knows
                client.update_flow_run(flow_run.id, tags=[*flow_run.tags, PRUNED_TAG])
                watch.stop_and_wait(client, flow_run, ending.stop)
                logger.info("%s: %s", name, ending.stop)
                return {**point_row(client, flow_run), "experiment": name, "status": "pruned", "error": ending.stop,
                        "lost_on": ", ".join(lost_on)}  # fmt: skip
            # Crashed (its process killed), or failed because the Prefect API did not answer it (a
            # server restart): nothing of the point's own, so it runs again, as a lost one does.
            crashed = ending.lost_after is None and (
                flow_run.state.is_crashed() or (flow_run.state.is_failed() and can_heal(flow_run.state.message))
            )
            if ending.lost_after is None and not crashed:
                break
            machine = point_row(client, flow_run).get("where") or "an unknown machine"
            if ending.lost_after is not None:
                watch.mark_lost(client, flow_run, machine, ending.lost_after)
            lost_on.append(machine)
            again = "running it again" if attempt < faults.retries else "no retries left"
            if ending.lost_after is not None:
                logger.warning("%s: lost on %s (no heartbeat for %.0fs): %s", name, machine, ending.lost_after, again)
            else:
                logger.warning("%s: crashed on %s (%s): %s", name, machine, flow_run.state.message, again)
            flow_run = None
        else:
            return {"experiment": name, "status": "lost", "lost_on": ", ".join(lost_on),
                    "error": f"lost on {', '.join(lost_on)}; no retries left (--retries {faults.retries})"}  # fmt: skip
        row = {**point_row(client, flow_run), "experiment": name, "lost_on": ", ".join(lost_on)}
        if search.pruning and row.get("status") == "done":
            reported(flow_run)  # every epoch, for the pruner's median: some ended between two looks
    logger.info("%s: %s %s", name, row["status"], row.get("error") or "")
    return row


def run_points(where: Where, search: Search, max_parallel: int, faults: watch.Faults) -> list[dict]:
    """Every trial of the search, at most `max_parallel` at once; a failed trial is a row, never a
    lost sweep. Each finished trial is told to the search. Stopping the sweep cancels its points,
    however they stand, and ends it within seconds."""
    stopping = threading.Event()

    def submit(name: str) -> PrefectFuture:
        task_run = run_point.with_options(task_run_name=name)
        return task_run.submit(where, name, search, faults, stopping, this_flow_run.id)

    def done(outcome: Outcome) -> None:
        if isinstance(outcome.error, (watch.ApiGone, watch.SweepCancelled)):  # the whole sweep ends
            raise outcome.error
        row = outcome.result or {}
        status = {"done": "finished", "pruned": "pruned"}.get(row.get("status"), "failed")
        search.finish(outcome.name, row.get(f"{where.objective}_val_accuracy"), status)

    def stop(running: list[str], why: BaseException) -> None:
        how = {}
        try:
            if isinstance(why, watch.ApiGone):
                return
            with get_client(sync_client=True) as client:
                for name in running:
                    flow_run = watch.latest_run(client, name, where.tag)
                    if flow_run is not None:
                        how[name] = watch.cancel(client, flow_run, faults)
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

    outcomes = run_bounded(search.names, submit, limit=max_parallel, on_done=done, on_stop=stop)
    return [row(outcome) for outcome in outcomes]
