"""Which failures may heal by trying again: a network or a server that did not answer, not a wrong
path, a bad param or a bug. Prefect retries the tasks that touch the network on those alone, and
a sweep runs a point again after one."""

from __future__ import annotations

import re
from typing import Any

_TRANSIENT = re.compile(
    r"timed? ?out|timeout|connection|temporar|unreachable|reset by peer|network|\b(429|502|503|504)\b", re.I
)


def can_heal(message: str | None) -> bool:
    """Whether a failure, by its message, is one that may heal: a network or a server that did not answer."""
    return bool(_TRANSIENT.search(message or ""))


def _can_heal(task: Any, task_run: Any, state: Any) -> bool:
    return can_heal(state.message)


# Prefect's task options for what touches the network (fetch, pull, push).
NETWORK_RETRIES = {"retries": 3, "retry_delay_seconds": [2, 5, 15], "retry_condition_fn": _can_heal}
