"""Which failures heal by trying again: the network's and a busy server's, not a mistake's."""

import pytest

from flows.plumbing.network import NETWORK_RETRIES, can_heal


@pytest.mark.parametrize(
    ("message", "heals"),
    [
        ("dvc pull failed: Connection refused", True),
        ("ERROR: unexpected error - timed out", True),
        ("HTTP 503 Service Unavailable", True),
        ("Temporary failure in name resolution", True),
        ("stage train-cnn failed: params.yaml: train_cnn.epochs = 0 is not allowed", False),
        ("No such file or directory: 'data/raw'", False),
        (None, False),
        ("", False),
    ],
)
def test_only_the_network_and_busy_servers_heal(message, heals):
    assert can_heal(message) is heals


def test_tasks_that_touch_the_network_retry_only_what_heals():
    assert NETWORK_RETRIES["retries"] == 3
    assert NETWORK_RETRIES["retry_condition_fn"](None, None, type("S", (), {"message": "reset by peer"})())
    assert not NETWORK_RETRIES["retry_condition_fn"](None, None, type("S", (), {"message": "bad param"})())
