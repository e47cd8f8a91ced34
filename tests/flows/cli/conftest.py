"""What the command-line tests share."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from flows.cli import supervision


@pytest.fixture
def last_line(caplog, monkeypatch) -> Callable[[], str]:
    """The last line `fmnist-flow` logged in this process. `supervision.quiet_prefect`, which a
    failure calls, turns Prefect's logger down: its level is put back after the test."""
    prefect = logging.getLogger("prefect")
    monkeypatch.setattr(prefect, "level", prefect.level)
    monkeypatch.setenv(supervision.EMBEDDED_SERVER_WAIT, "180")
    caplog.set_level(logging.INFO)
    return lambda: [r.getMessage() for r in caplog.records if r.name == "fmnist-flow"][-1]
