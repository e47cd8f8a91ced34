"""Checkpoints: a stopped run resumes where it stopped; one of other params, data or code is ignored."""

from stages.lib.checkpoint import Checkpoint, fingerprint
from stages.train_mlp import build_mlp
from tests.stages.tiny import MLP, train_once


def test_a_checkpointed_run_resumes_where_it_stopped(tmp_path):
    p = {**MLP, "epochs": 4, "patience": 10}
    directory = tmp_path / "ckpt"
    # A run that "dies" after two epochs: same params, epochs cut to 2, checkpoint kept.
    train_once(build_mlp, {**p, "epochs": 2}, Checkpoint(directory, "fp"))
    assert sorted(f.name for f in directory.iterdir()) == ["best-2.npz", "epoch-2.keras", "state.json"]
    model, history = train_once(build_mlp, p, Checkpoint(directory, "fp"))
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["val_accuracy"] > 0.5


def test_a_checkpoint_of_other_params_is_ignored(tmp_path):
    directory = tmp_path / "ckpt"
    train_once(build_mlp, {**MLP, "epochs": 1}, Checkpoint(directory, "old"))
    _, history = train_once(build_mlp, {**MLP, "epochs": 2}, Checkpoint(directory, "new"))
    assert [row["epoch"] for row in history] == [1, 2]


def test_the_fingerprint_follows_exactly_the_stages_deps_in_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  train-cnn:\n    cmd: python -m stages.train_cnn\n    deps: [stages/train_cnn.py, data]\n"
    )
    (tmp_path / "stages").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "stages/train_cnn.py").write_text("A = 1\n")
    (tmp_path / "stages/report.py").write_text("B = 1\n")
    (tmp_path / "data/train.npz").write_bytes(b"x")

    def current(**p):
        return fingerprint("train-cnn", {"epochs": 2, **p}, tmp_path / "dvc.yaml")

    first = current()
    (tmp_path / "stages/report.py").write_text("B = 2\n")  # not a dep of train-cnn
    assert current() == first
    assert current(epochs=3) != first
    (tmp_path / "data/train.npz").write_bytes(b"y")  # a file inside a dep directory
    second = current()
    assert second != first
    (tmp_path / "stages/train_cnn.py").write_text("A = 2\n")
    assert current() != second
