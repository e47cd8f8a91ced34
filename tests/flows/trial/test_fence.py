"""When a trial's run may no longer write for its point, with Prefect states built in memory."""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Cancelling, Completed, Crashed, Pending, Running

from flows.trial.fence import fenced


def run(state) -> FlowRun:
    return FlowRun(name="sweep-1", flow_id=uuid4(), state=state, tags=["fmnist-sweep:sweep"])


@pytest.mark.parametrize("state", [Running(), Pending()], ids=["running", "pending"])
def test_the_points_current_run_writes(state):
    me = run(state)
    assert fenced(me, me) is None
    assert fenced(me, None) is None  # not a sweep's run: nothing newer can replace it


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (Crashed(message="lost: no heartbeat for 130s from machine-a"),
         "its run was marked Crashed (lost: no heartbeat for 130s from machine-a)"),
        (Cancelling(), "its run was marked Cancelling"),
        (Cancelled(message="cancelled by the stopped sweep"), "its run was marked Cancelled (cancelled by the"),
        (Completed(), "its run was marked Completed"),
    ],
    ids=["declared-lost", "being-stopped", "stopped", "completed-by-another"],
)  # fmt: skip
def test_a_run_whose_state_someone_else_moved_on_writes_nothing(state, reason):
    me = run(state)
    assert fenced(me, me).startswith(reason)


def test_a_run_the_sweep_replaced_writes_nothing_even_if_its_state_was_not_moved_yet():
    me, rerun = run(Running()), run(Running())
    assert fenced(me, rerun) == f"the sweep runs the point again as {rerun.id}"
