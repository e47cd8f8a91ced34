"""Bounded parallelism over Prefect tasks, for the pipeline's stages and the sweep's points alike.

Whatever is ready starts, at most `limit` at once; each finished task is an Outcome (a failure
too, so the caller decides what it means); a stopped run (Ctrl-C, SIGTERM, a cancellation)
stops what is running before it unwinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prefect.futures import PrefectFuture, as_completed


@dataclass
class Outcome:
    name: str
    result: Any = None
    error: Exception | None = None


def run_bounded(
    ready: Callable[[], Iterable[str]],
    submit: Callable[[str], PrefectFuture],
    *,
    limit: int,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
    on_stop: Callable[[list[str], BaseException], None] = lambda running, stop: None,
) -> list[Outcome]:
    """Run tasks until nothing runs and nothing is ready; returns their Outcomes as they finished.

    Args:
        ready: the names that may start now (names already started are passed over); asked again
            whenever a slot is free, and read only as far as free slots go, so it may make names
            up as it is read (a search asking for its next trial).
        submit: starts `name` as a Prefect task and returns its future.
        limit: at most this many at once.
        on_done: told each Outcome as it comes, before `ready` is asked again.
        on_stop: called with the running names when the wait is interrupted, then the
            interruption is raised again.
    """
    started: set[str] = set()
    running: dict[PrefectFuture, str] = {}
    outcomes: list[Outcome] = []
    submitting: str | None = None  # a stop that lands while a task is being submitted still names it
    try:
        while True:
            if len(running) < limit:
                for name in ready():
                    if name in started:
                        continue
                    started.add(name)
                    submitting = name
                    running[submit(name)] = name
                    submitting = None
                    if len(running) >= limit:
                        break
            if not running:
                return outcomes
            done = next(as_completed(list(running)))
            name = running.pop(done)
            try:
                outcome = Outcome(name, done.result())
            except Exception as exc:  # noqa: BLE001 (an outcome like any other: the caller decides)
                outcome = Outcome(name, error=exc)
            outcomes.append(outcome)
            on_done(outcome)
    except BaseException as stop:  # Ctrl-C (KeyboardInterrupt), SIGTERM, Prefect's TerminationSignal
        names = {*running.values(), *([submitting] if submitting else [])}
        if names:
            on_stop(sorted(names), stop)
        raise
