"""DVC experiments: one run with changed params, watched as it trains, and a queue run two at a time in temp dirs.

Queued experiments run in copies of the git commit under .dvc/tmp/exps, with DVC checking out
their inputs: they succeed only if the stages read nothing that git or DVC does not track.
"""

import json
import subprocess
import time

import pytest

from tests.helpers import tool_env

pytestmark = pytest.mark.slow(minutes=9)


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


def test_a_queue_of_two_runs_in_parallel(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    for name, setting in [("mlp-32", "train_mlp.hidden_units=[32]"), ("mlp-seed-3", "train_mlp.seed=3")]:
        project.run("dvc", "exp", "run", "--queue", "-n", name, "-S", setting)
    proc = project.run("dvc", "exp", "run", "--run-all", "--jobs", "2")
    status = project.run("dvc", "queue", "status").stdout
    assert status.count("Success") == 2, status + proc.stdout + proc.stderr

    experiments = _experiments(project)
    assert {"mlp-32", "mlp-seed-3"} <= set(experiments)
    assert experiments["mlp-32"]["params"]["train_mlp"]["hidden_units"] == [32]
    assert experiments["mlp-seed-3"]["params"]["train_mlp"]["seed"] == 3
    for name in ("mlp-32", "mlp-seed-3"):
        accuracy = experiments[name]["metrics"]["metrics/evaluate.json"]["mlp"]["accuracy"]
        assert 0.1 < accuracy <= 1.0, (name, accuracy)
    # The queued runs trained their own MLPs: a 32-unit model is not the baseline's.
    baseline_mlp = reproduced.read_json("dvclive/train_mlp/metrics.json")
    assert experiments["mlp-32"]["metrics"]["dvclive/train_mlp/metrics.json"]["params"] < baseline_mlp["params"]


def test_dvclive_metrics_change_after_each_epoch_while_dvc_exp_run_trains(reproduced, tmp_path):
    """DVCLive rewrites the summary as each epoch ends (what `dvc exp show`, VS Code and Studio
    show of a running experiment), and the finished experiment shows the step and final scores."""
    project = reproduced.copy_to(tmp_path / "project")
    summary = project.root / "dvclive/train_cnn/metrics.json"
    # The default widths: a second or more an epoch on the tiny data, slow enough to watch.
    settings = ["train_cnn.epochs=4", "train_cnn.patience=4", "train_cnn.filters=[32,64]", "train_cnn.dense_units=128"]
    proc = subprocess.Popen(
        ["dvc", "exp", "run", "-n", "watched", *(f"-S{s}" for s in settings), "train-cnn"],
        cwd=project.root, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen: list[tuple[int, bool]] = []  # (step, finished) each time the summary changed, while running
    while proc.poll() is None:
        try:
            data = json.loads(summary.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # removed by DVC before the run, or mid-write
            data = None
        if data and (not seen or seen[-1] != (data["step"], "best_epoch" in data)):
            seen.append((data["step"], "best_epoch" in data))
        time.sleep(0.05)
    output = proc.stdout.read()
    assert proc.returncode == 0, output
    live = [step for step, finished in seen if not finished]
    assert live[:3] == [0, 1, 2], seen  # each epoch's summary, seen before the stage ended

    watched = _experiments(project)["watched"]  # one `dvc exp run -S`: its params and its metrics
    assert watched["params"]["train_cnn"]["epochs"] == 4 and watched["params"]["train_cnn"]["filters"] == [32, 64]
    final = watched["metrics"]["dvclive/train_cnn/metrics.json"]
    assert final["step"] == 3 and final["epochs_run"] == 4 and 1 <= final["best_epoch"] <= 4
    assert 0 < final["val_accuracy"] <= 1
