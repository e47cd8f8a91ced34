"""What a sweep and the flow runs of its trials say to each other through Prefect: names that both
sides read, and how both find a point's current run, kept here so that neither reaches into the
other's modules for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing Prefect reads its settings: not before `fmnist-flow` has set its own
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

EXPERIMENT_FLOW = "fmnist-experiment"  # the flow that runs one trial (flows/trial)
DEFAULT_DEPLOYMENT = "fmnist-experiment"  # prefect.yaml's deployment of it, on a work pool
RESULT_KEY = "fmnist-experiment-result"  # the table artifact a trial's run writes its row to
EPOCH_EVENT = "fmnist.training.epoch"  # a training epoch's validation accuracy, an event of the trial's run
SWEEP_TAG_PREFIX = "fmnist-sweep:"  # a point's runs carry their sweep's tag: this, then the sweep's name


def sweep_tag(sweep: str) -> str:
    """The tag of every point's flow run of the sweep `sweep`, so that a restarted sweep finds them,
    and a point's run the one that is current."""
    return f"{SWEEP_TAG_PREFIX}{sweep}"


def latest_run(client: SyncPrefectClient, name: str, tag: str) -> FlowRun | None:
    """The newest flow run of the point `name` of the sweep tagged `tag`, in whatever state: the
    point's current run (the sweep starts another only once it has given up on the one before)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]), tags=FlowRunFilterTags(all_=[tag])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=1,
    )
    return runs[0] if runs else None
