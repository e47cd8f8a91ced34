"""How far a sweep is, as a Prefect progress artifact on the sweep's run: n of N trials ended,
updated as each ends (restored ones from an earlier start count as they are restored)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.exceptions import PrefectHTTPStatusError


class Progress:
    """The progress artifact `key` of a sweep of `total` trials, created at 0% when this is made."""

    def __init__(self, key: str, total: int, sweep: str, logger: Any):
        self.total, self.sweep, self.logger = total, sweep, logger
        self.ended: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.id = create_progress_artifact(progress=0.0, key=key, description=self.description())

    def description(self) -> str:
        """`sweep-3f2a1c: 3 of 8 trials ended (2 done, 1 pruned)`."""
        said = f"{self.sweep}: {sum(self.ended.values())} of {self.total} trials ended"
        counts = ", ".join(f"{n} {status}" for status, n in self.ended.most_common())
        return f"{said} ({counts})" if counts else said

    def ended_one(self, status: str) -> None:
        """One more trial ended (done, pruned, failed, lost or stopped). An API that does not answer
        costs this update only (a log line), never the sweep."""
        with self._lock:
            self.ended[status] += 1
            percent = 100.0 * min(1.0, sum(self.ended.values()) / self.total)
            try:
                update_progress_artifact(self.id, progress=percent, description=self.description())
            except (httpx.HTTPError, PrefectHTTPStatusError, OSError) as exc:
                self.logger.warning("the sweep's progress artifact was not updated: %s", str(exc).splitlines()[0])
