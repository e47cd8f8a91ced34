"""A trial's own parts: where it ran, the epochs it reports while it trains, and the row it reports,
read from a reproduced checkout."""

from __future__ import annotations

import os
import time

import pytest

from flows.trial.flow import new_epochs, result_row, where


def test_where_is_the_machine_a_worker_names(monkeypatch):
    monkeypatch.setenv("FMNIST_MACHINE", "machine-a")
    assert where() == "machine-a"  # not in a container here
    monkeypatch.delenv("FMNIST_MACHINE")
    assert where()  # the host name


def test_only_the_epochs_the_trial_trains_are_reported(tmp_path):
    """In the trial's fresh clone the summary comes from git, before the trial starts; `dvc pull`
    then puts the commit's TSVs there (DVC outputs); the stage's epochs follow, each reported once."""
    live = tmp_path / "dvclive/train_cnn"
    (live / "plots/metrics").mkdir(parents=True)
    summary, curve = live / "metrics.json", live / "plots/metrics/val_accuracy.tsv"
    summary.write_text('{"step": 1}')
    started = time.time()
    os.utime(summary, (started - 60, started - 60))  # cloned before the trial started
    curve.write_text("step\tval_accuracy\n0\t0.8\n1\t0.85\n")  # pulled after: the commit's curve
    sent: set[tuple[str, int]] = set()
    assert new_epochs(tmp_path, started, sent) == []
    # The stage runs: DVC deletes its outputs, DVCLive writes an epoch's row, then its summary.
    curve.write_text("step\tval_accuracy\n0\t0.5\n")
    summary.write_text('{"step": 0}')
    assert new_epochs(tmp_path, started, sent) == [{"model": "cnn", "epoch": 1, "val_accuracy": 0.5}]
    curve.write_text("step\tval_accuracy\n0\t0.5\n1\t0.6\n")
    assert new_epochs(tmp_path, started, sent) == [{"model": "cnn", "epoch": 2, "val_accuracy": 0.6}]
    assert new_epochs(tmp_path, started, sent) == []


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
