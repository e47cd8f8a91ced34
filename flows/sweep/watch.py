"""Watching a sweep point's flow run on the Prefect server: found again after the sweep restarts,
declared lost when its machine falls silent, cancelled however it stands when the sweep stops.

A point's flow run sends a heartbeat event every HEARTBEAT_SECONDS (Prefect's flow-run
heartbeats, which the sweep asks each point's run for). A running point whose last sign of life
(its last heartbeat, or the start of its run) is older than `lost_after` seconds is lost: its
machine, worker and all, is gone. The sweep does this watching itself rather than through a server
automation ("detect zombie flows"): the sweep must act on a lost point anyway (run it again), and
this way nothing is configured on a server that a team shares, and any Prefect server works.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import TERMINAL_STATES, FlowRun, StateType
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelled, Cancelling, Crashed

from flows.sweep.options import HEARTBEAT_SECONDS, SweepOptions

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
POLL_SECONDS = 2.0
SILENCE_CHECK_SECONDS = 10.0  # how often the heartbeats of a running point are read
PENDING_SECONDS = 30.0  # how long a stopping sweep waits for a point a worker took to start running


class ApiGone(RuntimeError):
    """The Prefect API did not answer for longer than a sweep waits."""


class Stopped(Exception):
    """The sweep is stopping: stop waiting."""


class SweepCancelled(Exception):
    """The sweep's own flow run was cancelled (from the Prefect UI or API)."""


def silent_for(client: SyncPrefectClient, run: FlowRun, now: datetime | None = None) -> float:
    """Seconds since the running flow run's last heartbeat (or since it started, if none yet)."""
    now = now or datetime.now(timezone.utc)
    since = run.start_time or (run.state.timestamp if run.state else now)
    page = client.read_events(
        EventFilter(
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
            occurred=EventOccurredFilter(since=since - timedelta(seconds=1), until=now + timedelta(minutes=5)),
        ),
        limit=1,
    )
    last = max([since, *(event.occurred for event in page.events)])
    return (now - last).total_seconds()


@dataclass(frozen=True)
class Ending:
    """How following a point's run ended: the run as last read, and why if it is not final."""

    run: FlowRun
    lost_after: float | None = None  # seconds it had been silent, if its machine was lost
    stop: str | None = None  # the reason `on_running` gave to stop it (a pruned trial)


def follow(
    client: SyncPrefectClient,
    run: FlowRun,
    options: SweepOptions,
    stopping: threading.Event,
    *,
    pool: str | None = None,
    sweep_run: Any = None,
    on_no_worker: Callable[[float], None] | None = None,
    on_running: Callable[[FlowRun], str | None] | None = None,
) -> Ending:
    """Wait until `run` is final, lost, or to be stopped.

    Every SILENCE_CHECK_SECONDS, a running run's heartbeats are read and `on_running(run)` may
    give a reason to stop it; while it waits for a worker and `pool` has had no live worker for
    `lost_after` seconds, `on_no_worker(seconds)` is told (once). Raises Stopped as soon as
    `stopping` is set, SweepCancelled when the flow run `sweep_run` (the sweep's id) is being
    cancelled, and ApiGone when the API has not answered for `options.api_outage` seconds (a
    restart of the server within that costs nothing).
    """
    unanswered_since: float | None = None
    checked = no_worker_since = trusted_from = time.monotonic()
    while True:
        if stopping.wait(POLL_SECONDS):
            raise Stopped
        try:
            run = client.read_flow_run(run.id)
            if run.state and run.state.is_final():
                return Ending(run)
            if sweep_run is not None:
                sweep = client.read_flow_run(sweep_run).state
                if sweep and (sweep.is_cancelling() or sweep.is_cancelled()):
                    raise SweepCancelled("the sweep was cancelled")
            if time.monotonic() - checked >= SILENCE_CHECK_SECONDS:
                checked = time.monotonic()
                if run.state and run.state.is_running():
                    silence = min(silent_for(client, run), time.monotonic() - trusted_from)
                    if silence > options.lost_after:
                        return Ending(run, lost_after=silence)
                    reason = on_running(run) if on_running else None
                    if reason:
                        return Ending(run, stop=reason)
                elif pool and on_no_worker:
                    if online_workers(client, pool):
                        no_worker_since = time.monotonic()
                    elif time.monotonic() - no_worker_since > options.lost_after:
                        on_no_worker(time.monotonic() - no_worker_since)
                        on_no_worker = None
            if unanswered_since is not None:  # no heartbeat could arrive while the API was away
                unanswered_since, trusted_from = None, time.monotonic()
        except (httpx.HTTPError, PrefectHTTPStatusError, OSError):
            unanswered_since = unanswered_since or time.monotonic()
            if time.monotonic() - unanswered_since > options.api_outage:
                url = str(client.api_url).rstrip("/")
                raise ApiGone(
                    f"the Prefect API at {url} did not answer for {options.api_outage:.0f}s: start it again and "
                    "run the same sweep to resume (finished points are restored)"
                ) from None


def stop_and_wait(client: SyncPrefectClient, run: FlowRun, reason: str, timeout: float = 120) -> FlowRun:
    """Cancel a running point through Prefect (its worker stops its stages, as for a stopped run) and
    wait until it has stopped; marked Cancelled after `timeout` if its worker never reports."""
    client.set_flow_run_state(run.id, Cancelling(message=reason), force=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.read_flow_run(run.id)
        if run.state and run.state.is_final():
            return run
        time.sleep(POLL_SECONDS)
    client.set_flow_run_state(run.id, Cancelled(message=reason), force=True)
    return client.read_flow_run(run.id)


def epochs(client: SyncPrefectClient, run: FlowRun, event: str, model: str) -> dict[int, float]:
    """{epoch: validation accuracy} of `model` in the events `run` has sent (flows/experiment.py)."""
    page = client.read_events(
        EventFilter(
            event=EventNameFilter(name=[event]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
            occurred=EventOccurredFilter(
                since=(run.start_time or run.created) - timedelta(seconds=5),
                until=datetime.now(timezone.utc) + timedelta(minutes=5),
            ),  # fmt: skip
        ),
        limit=50,  # the API's most
    )
    found = {}
    while True:
        for e in page.events:
            if e.payload.get("model") == model:
                found[int(e.payload["epoch"])] = float(e.payload["val_accuracy"])
        if not page.next_page:
            return found
        page = client.read_events_page(page.next_page)


def mark_lost(client: SyncPrefectClient, run: FlowRun, where: str, silence: float) -> None:
    """Crashed, saying why, with the subflows it left running: no worker will report on them again."""
    message = f"lost: no heartbeat for {silence:.0f}s from {where or 'its machine'}"
    orphans = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=list(TERMINAL_STATES))),
        )
    )
    for lost in [run, *orphans]:
        client.set_flow_run_state(lost.id, Crashed(message=message), force=True)


def cancel(client: SyncPrefectClient, run: FlowRun) -> str:
    """Cancel a point's run however it stands; returns how. A live worker stops a running point
    (Cancelling, which it carries out); a point no worker took yet, or one on a lost machine,
    is marked Cancelled at once, since nobody is left to carry out a Cancelling."""
    run = client.read_flow_run(run.id)
    # Pending: a worker took it and is starting its process. A Cancelled set now would not stop
    # it: the server lets that process move the run from Cancelled to Running, and it trains on,
    # unwatched (seen in a stopped search whose next trial had just been taken). So it is
    # cancelled once it runs, which takes seconds; one still Pending after PENDING_SECONDS (its
    # worker lost meanwhile) is marked Cancelled below.
    deadline = time.monotonic() + PENDING_SECONDS
    while run.state and run.state.is_pending() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 4)
        run = client.read_flow_run(run.id)
    if run.state and run.state.is_final():
        return "finished"
    # Two heartbeats missed is already more than a live machine's lateness: this one is lost.
    if run.state and run.state.is_running() and silent_for(client, run) <= 2 * HEARTBEAT_SECONDS + POLL_SECONDS:
        client.set_flow_run_state(run.id, Cancelling(), force=True)
        return "cancelled"
    if run.state and run.state.is_running():
        client.set_flow_run_state(run.id, Cancelled(message="its machine was lost; cancelled by the stopped sweep"),
                                  force=True)  # fmt: skip
        return "lost, marked cancelled"
    if run.state and run.state.is_pending():  # its worker was lost while it started the point
        client.set_flow_run_state(run.id, Cancelled(message="cancelled by the stopped sweep"), force=True)
        return "cancelled before it started"
    return cancel_unstarted(client, run)


def cancel_unstarted(client: SyncPrefectClient, run: FlowRun) -> str:
    """Mark Cancelled a point that `run` (as last read) shows no worker has taken yet.

    A worker may take it between that read and this write (Prefect has no compare-and-set of a
    state): the forced Cancelled then lands on its Pending, and the process the worker starts moves
    the run on from Cancelled to Running. That shows in the run's states, a Pending just before
    this Cancelled; the point is then cancelled as a running one once its process runs it (seen in
    a stopped search whose next two trials had been created a moment before the stop)."""
    client.set_flow_run_state(run.id, Cancelled(message="cancelled by the stopped sweep"), force=True)
    states = [state.type for state in client.read_flow_run_states(run.id)]  # oldest first
    mine = len(states) - 1 - states[::-1].index(StateType.CANCELLED)  # its process may have moved on since
    if mine == 0 or states[mine - 1] != StateType.PENDING:
        return "cancelled before it started"
    deadline = time.monotonic() + PENDING_SECONDS
    while time.monotonic() < deadline:
        run = client.read_flow_run(run.id)
        if run.state and run.state.is_running():
            client.set_flow_run_state(run.id, Cancelling(), force=True)
            return "cancelled"
        if run.state and run.state.is_final() and not run.state.is_cancelled():
            return "finished"
        time.sleep(POLL_SECONDS / 4)
    return "cancelled before it started"  # its process never ran it (its worker lost meanwhile)


def online_workers(client: SyncPrefectClient, pool: str) -> list[str]:
    return [w.name for w in client.read_workers_for_work_pool(pool) if str(w.status).endswith("ONLINE")]
