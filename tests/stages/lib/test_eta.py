"""The time left: a stage's, from its epochs' times, and the run's, with the training stages still to run."""

import json
import subprocess

import yaml

from stages.lib import last_run
from stages.lib.eta import Eta, recorded, still_to_run

PARAMS = {"train_mlp": {"epochs": 3}, "train_cnn": {"epochs": 10}}


def _checkout(root, *, mlp_params=None, with_model=True, data=b"data"):
    """A checkout whose dvc.lock records train-mlp (with `mlp_params`) on data/train.npz."""
    (root / "data").mkdir(parents=True)
    (root / "data/train.npz").write_bytes(data)
    (root / "models").mkdir()
    if with_model:
        (root / "models/mlp.keras").write_bytes(b"model")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    lock = {"stages": {"train-mlp": {
        "deps": [{"path": "data/train.npz", "md5": "8d777f385d3dfec8815d20f7496026dc"}],  # md5 of b"data"
        "params": {"params.yaml": {"train_mlp": mlp_params or PARAMS["train_mlp"]}},
    }}}  # fmt: skip
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    for name, seconds, epochs in (("mlp", 30.0, 3), ("cnn", 100.0, 10)):
        (root / f"dvclive/train_{name}").mkdir(parents=True)
        summary = {"train_seconds": seconds, "epochs_run": epochs}
        (root / f"dvclive/train_{name}/metrics.json").write_text(json.dumps(summary))
    return root


def test_a_training_stage_is_still_to_run_when_its_record_does_not_match(tmp_path):
    assert still_to_run("train-cnn", _checkout(tmp_path / "same")) == []
    assert still_to_run("train-cnn", _checkout(tmp_path / "params", mlp_params={"epochs": 4})) == ["train-mlp"]
    assert still_to_run("train-cnn", _checkout(tmp_path / "no-model", with_model=False)) == ["train-mlp"]
    assert still_to_run("train-cnn", _checkout(tmp_path / "data", data=b"other")) == ["train-mlp"]
    assert still_to_run("train-cnn", tmp_path / "nothing") == ["train-mlp"]  # no dvc.lock at all


def test_the_stage_alone_when_nothing_else_trains(tmp_path):
    eta = Eta("train-cnn", 10, _checkout(tmp_path))
    assert eta.line([{"seconds": 30.0}, {"seconds": 30.0}]) == "~4m00s left in train-cnn, then evaluate and report"


def test_the_run_adds_the_stages_to_come_scaled_to_this_machine(tmp_path):
    root = _checkout(tmp_path, with_model=False)
    # This machine trains the CNN at 20 s an epoch where its record took 10 s, so the MLP's 30 s are 60.
    assert Eta("train-cnn", 10, root).line([{"seconds": 20.0}]) == (
        "~3m00s left in train-cnn, ~4m00s in the run (train-mlp ~1m00s to come)"
    )
    # Unscaled without a record of this stage: the other stage's last recorded time.
    (root / "dvclive/train_cnn/metrics.json").unlink()
    assert Eta("train-cnn", 10, root).line([{"seconds": 20.0}]) == (
        "~3m00s left in train-cnn, ~3m30s in the run (train-mlp ~30s as last recorded to come)"
    )


def test_a_record_dvc_deleted_is_read_from_the_last_runs_copy_or_from_head(tmp_path):
    root = _checkout(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "dvclive/train_mlp/metrics.json"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "record"], cwd=root,
                   check=True)  # fmt: skip
    kept = last_run.kept_copy("train-cnn", root) / "dvclive/train_cnn"
    kept.mkdir(parents=True)
    (kept / "metrics.json").write_text(json.dumps({"train_seconds": 50.0, "epochs_run": 5}))
    for name in ("mlp", "cnn"):  # as DVC leaves them when it starts the stages
        (root / f"dvclive/train_{name}/metrics.json").unlink()
    assert recorded(root) == {"train-mlp": {"seconds": 30.0, "epochs": 3}, "train-cnn": {"seconds": 50.0, "epochs": 5}}


def test_a_stage_to_come_is_timed_for_the_epochs_asked_now(tmp_path):
    root = _checkout(tmp_path, with_model=False)
    params = {**PARAMS, "train_mlp": {"epochs": 6}}  # twice the 3 epochs its record (30 s) ran
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "dvclive/train_cnn/metrics.json").unlink()  # no record of this stage: unscaled
    assert Eta("train-cnn", 10, root).line([{"seconds": 20.0}]) == (
        "~3m00s left in train-cnn, ~4m00s in the run (train-mlp ~1m00s as last recorded to come)"
    )
