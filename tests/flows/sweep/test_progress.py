"""A sweep's progress artifact on a real Prefect server: it starts at 0 and moves as trials end."""

from __future__ import annotations

import logging

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.sweep.progress import Progress


def read(artifact_id) -> tuple[float, str]:
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(id=ArtifactFilterId(any_=[artifact_id])))
    return float(artifact.data), artifact.description


@flow
def a_sweep(statuses: list[str]) -> list[tuple[float, str]]:
    """A sweep of three trials that end with `statuses`, reading its progress artifact after each."""
    progress = Progress("fmnist-sweep-progress-test", 3, "sweep-abc123", logging.getLogger("test-progress"))
    seen = [read(progress.id)]
    for status in statuses:
        progress.ended_one(status)
        seen.append(read(progress.id))
    return seen


def test_the_progress_artifact_moves_as_trials_end(prefect_server):
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        seen = a_sweep(["done", "pruned", "done"])
    assert [round(percent, 1) for percent, _ in seen] == [0.0, 33.3, 66.7, 100.0]
    assert [description for _, description in seen] == [
        "sweep-abc123: 0 of 3 trials ended",
        "sweep-abc123: 1 of 3 trials ended (1 done)",
        "sweep-abc123: 2 of 3 trials ended (1 done, 1 pruned)",
        "sweep-abc123: 3 of 3 trials ended (2 done, 1 pruned)",
    ]
