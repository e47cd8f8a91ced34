"""DVC experiments: one run with a changed param, and a queue run two at a time in temp dirs.

Queued experiments run in copies of the git commit under .dvc/tmp/exps, with DVC checking out
their inputs: they succeed only if the stages read nothing that git or DVC does not track.
"""

import json

import pytest

pytestmark = pytest.mark.slow


def _experiments(project) -> dict[str, dict]:
    """{experiment name: its params.yaml and metrics} from `dvc exp show --json`."""
    rows = json.loads(project.run("dvc", "exp", "show", "--json").stdout)
    found = {}
    for baseline in rows[1:]:  # rows[0] is the workspace
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev["data"]
                found[rev["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": {path: m["data"] for path, m in data["metrics"].items()},
                }
    return found


def test_exp_run_with_a_param_and_a_queue_of_two_in_parallel(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    project.run("dvc", "exp", "run", "-n", "cnn-2-epochs", "-S", "train_cnn.epochs=2")
    for name, setting in [("mlp-32", "train_mlp.hidden_units=[32]"), ("mlp-seed-3", "train_mlp.seed=3")]:
        project.run("dvc", "exp", "run", "--queue", "-n", name, "-S", setting)
    proc = project.run("dvc", "exp", "run", "--run-all", "--jobs", "2")
    status = project.run("dvc", "queue", "status").stdout
    assert status.count("Success") == 2, status + proc.stdout + proc.stderr

    experiments = _experiments(project)
    assert {"cnn-2-epochs", "mlp-32", "mlp-seed-3"} <= set(experiments)
    assert experiments["cnn-2-epochs"]["params"]["train_cnn"]["epochs"] == 2
    assert experiments["cnn-2-epochs"]["metrics"]["metrics/train_cnn.json"]["epochs_run"] == 2
    assert experiments["mlp-32"]["params"]["train_mlp"]["hidden_units"] == [32]
    assert experiments["mlp-seed-3"]["params"]["train_mlp"]["seed"] == 3
    for name in ("cnn-2-epochs", "mlp-32", "mlp-seed-3"):
        accuracy = experiments[name]["metrics"]["metrics/evaluate.json"]["mlp"]["accuracy"]
        assert 0.1 < accuracy <= 1.0, (name, accuracy)
    # The queued runs trained their own MLPs: a 32-unit model is not the baseline's.
    baseline_mlp = reproduced.read_json("metrics/train_mlp.json")
    assert experiments["mlp-32"]["metrics"]["metrics/train_mlp.json"]["params"] < baseline_mlp["params"]
