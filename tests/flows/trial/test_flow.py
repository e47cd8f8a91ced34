"""A trial's own parts: where it ran, and the row it reports, read from a reproduced checkout."""

from __future__ import annotations

import pytest

from flows.trial.flow import result_row, where


def test_where_is_the_machine_a_worker_names(monkeypatch):
    monkeypatch.setenv("FMNIST_MACHINE", "machine-a")
    assert where() == "machine-a"  # not in a container here
    monkeypatch.delenv("FMNIST_MACHINE")
    assert where()  # the host name


@pytest.mark.slow
def test_the_row_is_each_models_kept_epoch_and_test_scores(reproduced):
    row = result_row(reproduced.root)
    evaluation = reproduced.read_json("metrics/evaluate.json")
    assert row["val_images"] == reproduced.read_json("data/processed/stats.json")["splits"]["val"]["count"]
    for model in ("mlp", "cnn"):
        training = reproduced.read_json(f"dvclive/train_{model}/metrics.json")
        assert row[f"{model}_val_accuracy"] == training["val_accuracy"]  # a search's objective
        assert row[f"{model}_accuracy"] == evaluation[model]["accuracy"]
        assert row[f"{model}_macro_f1"] == evaluation[model]["macro_f1"]
        assert row[f"{model}_train_seconds"] == training["train_seconds"]
