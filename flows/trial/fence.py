"""Fencing: a trial's run that its sweep has given up on writes nothing that belongs to the point.

A machine the sweep declared lost may only have been paused (a suspended VM, a partition, a long
stall) and resume later; by then the sweep has marked its run Crashed and started the point again
elsewhere. The run finds out, from its own state and from the point's current run on the Prefect
server (the newest one tagged with the sweep: flows/contract.py), and stops: its stages are
stopped and the process ends without another word to the server, so its run stays as the sweep
left it, and nothing of the point (its outputs on the DVC remote, its experiment on the git remote,
its result, a Completed state) comes from it.

It finds out within FENCE_SECONDS of coming back (a thread that watches while it runs), and at the
latest right before each write. Between that last look and the write itself the process could be
paused again: where a write can be made conditional, it is (the experiment's ref is pushed only
if the git remote still holds what this run saw there: flows/trial/flow.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import MissingContextError, PrefectHTTPStatusError
from prefect.runtime import flow_run as this_flow_run

from flows.contract import SWEEP_TAG_PREFIX, latest_run
from flows.plumbing import processes

FENCE_SECONDS = 5.0  # how often a running trial looks whether its sweep still counts on it
API_PATIENCE = 60.0  # how long a write waits for the Prefect API to say whether it may be made

log = logging.getLogger("flows.trial.fence")


def fenced(me: FlowRun, current: FlowRun | None) -> str | None:
    """Why the run `me` may no longer write for its point, or None: its state was moved on by
    someone else (Crashed: declared lost; Cancelling or Cancelled: stopped), or the point's current
    run (`current`, the newest of the sweep's runs of it) is another one."""
    state = me.state
    if state is not None and (state.is_final() or state.is_cancelling()):
        message = (state.message or "").splitlines()[0] if state.message else ""
        return f"its run was marked {state.name}{f' ({message})' if message else ''}"
    if current is not None and current.id != me.id:
        return f"the sweep runs the point again as {current.id}"
    return None


class Fence:
    """What the trial `name`'s run (this process's flow run) looks up before it writes."""

    def __init__(self, name: str):
        self.name, self.run_id = name, this_flow_run.id
        self.tag = next((t for t in this_flow_run.tags or () if t.startswith(SWEEP_TAG_PREFIX)), None)

    def reason(self, client: SyncPrefectClient) -> str | None:
        me = client.read_flow_run(self.run_id)
        return fenced(me, latest_run(client, self.name, self.tag) if self.tag else None)

    def check(self) -> None:
        """Before a write: return if this run is still the point's; stop it if not. An API that does
        not answer for API_PATIENCE seconds fails the run (its sweep runs the point again)."""
        deadline = time.monotonic() + API_PATIENCE
        while True:
            try:
                with get_client(sync_client=True) as client:
                    reason = self.reason(client)
                break
            except (httpx.HTTPError, PrefectHTTPStatusError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name}: connection to the Prefect API failed for {API_PATIENCE:.0f}s, so this run "
                        "cannot tell whether its sweep still counts on it: nothing of the point was written"
                    ) from None
                time.sleep(2)
        if reason:
            self.stop(reason)

    def stop(self, reason: str) -> None:
        """This run may write nothing more: stop its stages and end the process, leaving its flow
        run's state as the sweep set it."""
        try:
            logger = get_run_logger()  # the run's log on the server too, where it still answers
        except MissingContextError:
            logger = log
        logger.warning("%s: %s; this run stops and writes nothing of the point", self.name, reason)
        processes.stop_all(grace=10)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """While the block runs, look every FENCE_SECONDS; stop the run as soon as it is fenced."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(FENCE_SECONDS):
                try:
                    with get_client(sync_client=True) as client:
                        reason = self.reason(client)
                except (httpx.HTTPError, PrefectHTTPStatusError, OSError):
                    continue  # the API is away: the writes look again themselves
                if reason:
                    self.stop(reason)

        # In this flow run's context: the thread then talks to the same Prefect API as the run.
        watcher = threading.Thread(target=contextvars.copy_context().run, args=(watch,), name="fence", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
