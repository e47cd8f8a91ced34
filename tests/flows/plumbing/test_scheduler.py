"""The bounded scheduler's stop: whatever it had started, the one being submitted included, is named."""

from __future__ import annotations

import pytest

from flows.plumbing.scheduler import run_bounded


def test_a_stop_while_a_task_is_being_submitted_names_it():
    told: list[list[str]] = []

    def submit(name: str):
        raise KeyboardInterrupt  # Ctrl-C as the task's flow run is being created

    with pytest.raises(KeyboardInterrupt):
        run_bounded(lambda: ["a", "b"], submit, limit=2, on_stop=lambda running, stop: told.append(running))
    assert told == [["a"]]  # so the stop can cancel its run; "b" was never started
