"""What a point's run states decide, with Prefect states built in memory: what an earlier start of the
sweep left, how a followed run ended (the retry policy), and the row a run's report makes."""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Cancelling, Completed, Crashed, Failed, Pending, Running, Scheduled

from flows.sweep.points import (
    CRASHED,
    DONE,
    FINAL,
    LOST,
    PRUNED,
    PRUNED_TAG,
    RERUN_AFTER_STOP,
    START,
    WAIT,
    earlier,
    outcome,
    reported_row,
)
from flows.sweep.watch import Ending


def run(state, tags=()) -> FlowRun:
    return FlowRun(name="sweep-1", flow_id=uuid4(), state=state, tags=list(tags))


def never_read():
    raise AssertionError("the reported status is read only for a completed run")


@pytest.mark.parametrize(
    ("left", "reported", "decision"),
    [
        (None, never_read, START),  # no earlier start ran it
        (run(Completed(), [PRUNED_TAG]), never_read, PRUNED),  # the search stopped it: not run again
        (run(Cancelled(message="pruned at epoch 2"), [PRUNED_TAG]), never_read, PRUNED),
        (run(Completed()), lambda: "done", DONE),  # restored, not retrained
        (run(Completed()), lambda: "failed", START),  # completed without a result: run again
        (run(Running()), never_read, WAIT),  # still running on its worker: waited for
        (run(Pending()), never_read, WAIT),
        (run(Scheduled()), never_read, WAIT),
        (run(Cancelling()), never_read, RERUN_AFTER_STOP),  # an earlier stop's, still carried out
        (run(Crashed(message="lost: no heartbeat for 130s")), never_read, START),  # lost: run again
        (run(Failed(message="stage train-cnn failed")), never_read, START),
        (run(Cancelled()), never_read, START),  # stopped by an earlier stop: run again
    ],
    ids=["none", "pruned", "pruned-cancelled", "done", "completed-unreported", "running", "pending", "scheduled",
         "cancelling", "lost", "failed", "cancelled"],
)  # fmt: skip
def test_what_an_earlier_start_left_decides_what_this_start_does(left, reported, decision):
    assert earlier(left, reported) == decision


@pytest.mark.parametrize(
    ("ending", "how"),
    [
        (Ending(run(Running()), lost_after=125.0), LOST),  # its machine fell silent
        (Ending(run(Crashed(message="process exited -9"))), CRASHED),  # its process was killed
        (Ending(run(Failed(message="Connection refused by the Prefect API"))), CRASHED),  # a server restart
        (Ending(run(Failed(message="stage train-cnn failed: params.yaml: ..."))), FINAL),  # its own: no rerun
        (Ending(run(Completed())), FINAL),
        (Ending(run(Cancelled())), FINAL),
        (Ending(run(Running()), stop="pruned at epoch 1"), FINAL),  # the search stopped it
    ],
    ids=["lost", "crashed", "api-gone", "own-failure", "completed", "cancelled", "pruned"],
)
def test_how_a_followed_run_ended_decides_whether_it_runs_again(ending, how):
    assert outcome(ending) == how


def test_a_run_that_reported_a_final_row_keeps_it_and_one_that_did_not_says_its_state():
    row = {"experiment": "sweep-1", "where": "machine-a", "status": "done", "cnn_val_accuracy": 0.9}
    assert reported_row(row, run(Completed())) == row
    running = {"experiment": "sweep-1", "where": "machine-a", "status": "running"}
    lost = reported_row(running, run(Crashed(message="lost: no heartbeat for 130s from machine-a\nmore")))
    assert lost == {**running, "status": "failed", "error": "Crashed: lost: no heartbeat for 130s from machine-a"}
    stopped = reported_row({}, run(Cancelled(message="cancelled by the stopped sweep")))
    assert stopped["status"] == "stopped" and stopped["error"] == "Cancelled: cancelled by the stopped sweep"
    # A row a run reported as done, while the run itself is not final (its process still ending): not final.
    assert reported_row(row, run(Running()))["status"] == "failed"
