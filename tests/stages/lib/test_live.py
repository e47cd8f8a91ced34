"""DVCLive's files as a training run writes them, epoch by epoch, a resumed run included."""

import json
from pathlib import Path

import pytest

from stages.lib.checkpoint import Checkpoint
from stages.lib.live import HISTORY_COLUMNS, TrainingLive
from stages.train_mlp import build_mlp
from tests.stages.tiny import MLP, train_once


def _live_rows(directory, metric):
    lines = (directory / "plots" / "metrics" / f"{metric}.tsv").read_text().splitlines()
    assert lines[0] == f"step\t{metric}"
    return [(int(step), float(value)) for step, value in (line.split("\t") for line in lines[1:])]


class RecordingLive(TrainingLive):
    """DVCLive, noting its summary file each time a step ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def next_step(self):
        super().next_step()
        self.seen.append(json.loads(Path(self.metrics_file).read_text()))


def test_every_epoch_is_logged_to_dvclive_as_it_ends(tmp_path):
    directory = tmp_path / "dvclive"
    live = RecordingLive(directory)
    _, history = train_once(build_mlp, {**MLP, "epochs": 3}, live=live)
    assert [summary["step"] for summary in live.seen] == [0, 1, 2]  # rewritten as each epoch ended
    assert live.seen[0]["val_accuracy"] == pytest.approx(history[0]["val_accuracy"], abs=1e-6)
    for metric in HISTORY_COLUMNS[1:]:
        rows = _live_rows(directory, metric)
        assert [step for step, _ in rows] == [0, 1, 2]
        assert [value for _, value in rows] == pytest.approx([row[metric] for row in history], abs=1e-6)
    assert not list(tmp_path.rglob("dvc.yaml"))  # dvc.yaml declares these files; DVCLive writes none


def test_a_resumed_run_continues_dvclives_steps(tmp_path):
    p = {**MLP, "epochs": 4, "patience": 10}
    checkpoint, directory = tmp_path / "ckpt", tmp_path / "dvclive"
    live = TrainingLive(directory)
    train_once(build_mlp, {**p, "epochs": 2}, Checkpoint(checkpoint, "fp"), live=live)
    # The next run starts a fresh DVCLive directory (DVC removes a stage's outputs before it runs).
    live = TrainingLive(directory)
    _, history = train_once(build_mlp, p, Checkpoint(checkpoint, "fp"), live=live)
    assert [step for step, _ in _live_rows(directory, "val_accuracy")] == [0, 1, 2, 3]
    assert [v for _, v in _live_rows(directory, "val_accuracy")] == pytest.approx(
        [row["val_accuracy"] for row in history], abs=1e-6
    )
