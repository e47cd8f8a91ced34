"""Cancelling a sweep's point on a real Prefect server, in the states a stop can find it: the moves
a worker and its process make are the ones they send the API (Pending, then Running)."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Pending, Running, Scheduled

from flows.sweep import watch


@flow
def point() -> None:
    """A point's flow run, as far as its states go."""


@pytest.fixture
def client(prefect_server):
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}), get_client(sync_client=True) as c:
        yield c


def test_a_point_a_worker_takes_as_the_stop_marks_it_is_cancelled_once_its_process_runs_it(client):
    """The stop read it Scheduled; a worker took it (Pending) before the stop's Cancelled landed, and
    the worker's process then moved it on to Running: it ends Cancelling, which its worker carries out."""
    read = client.create_flow_run(point, state=Scheduled())  # as the stop read it
    client.set_flow_run_state(read.id, Pending())  # the worker takes it

    answers = []

    def process_starts() -> None:
        time.sleep(1)
        answers.append(client.set_flow_run_state(read.id, Running()).status.value)

    process = threading.Thread(target=process_starts)
    process.start()
    started = time.monotonic()
    how = watch.cancel_unstarted(client, read)
    process.join()
    assert answers == ["ACCEPT"]  # Prefect lets the process move the run on from Cancelled
    assert how == "cancelled"
    assert client.read_flow_run(read.id).state.is_cancelling()
    assert time.monotonic() - started < watch.PENDING_SECONDS


def test_a_point_no_worker_took_is_marked_cancelled_at_once_and_no_worker_can_take_it(client):
    read = client.create_flow_run(point, state=Scheduled())
    started = time.monotonic()
    assert watch.cancel_unstarted(client, read) == "cancelled before it started"
    assert time.monotonic() - started < 5
    assert client.set_flow_run_state(read.id, Pending()).status.value == "ABORT"  # a worker's late take
    assert client.read_flow_run(read.id).state.is_cancelled()
