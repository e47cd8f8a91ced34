"""`dvc repro` end to end on a copy of the project, with tiny params on the real data."""

import json
import re

import pytest

ALL = ["fetch", "preprocess", "train-mlp", "train-cnn", "evaluate", "report"]

pytestmark = pytest.mark.slow(minutes=4)


@pytest.fixture(scope="module")
def project(reproduced, tmp_path_factory):
    """A copy of the session's tiny project, which `dvc repro` ran from nothing and committed."""
    return reproduced.copy_to(tmp_path_factory.mktemp("pipeline") / "project")


def test_a_repro_from_nothing_runs_every_stage_upstream_first(reproduced):
    # train-mlp and train-cnn are independent: DVC may take them in either order.
    ran = reproduced.ran
    assert ran[:2] == ALL[:2] and sorted(ran[2:4]) == ["train-cnn", "train-mlp"] and ran[4:] == ALL[4:]


def test_outputs_land_in_the_project(project):
    root = project.root
    for path in ("models/mlp.keras", "models/cnn.keras", "reports/report.html", "reports/report.md",
                 "dvclive/train_cnn/plots/metrics/val_accuracy.tsv", "plots/evaluate/cnn_confusion.csv",
                 "plots/report/accuracy.csv"):  # fmt: skip
        assert (root / path).is_file(), path
    metrics = json.loads((root / "metrics/evaluate.json").read_text())
    assert set(metrics) == {"mlp", "cnn"}
    # One epoch on 1,500 images: the MLP is well above chance (0.1); the CNN's batch-norm
    # statistics have barely settled after 12 steps, so it only has to beat chance.
    assert 0.5 < metrics["mlp"]["accuracy"] <= 1.0
    assert 0.15 < metrics["cnn"]["accuracy"] <= 1.0
    stats = json.loads((root / "data/processed/stats.json").read_text())
    assert {k: v["count"] for k, v in stats["splits"].items()} == {"train": 1500, "val": 500, "test": 1000}
    # Metrics and plot data are in git; DVCLive's per-epoch TSVs, like the models, in the DVC cache.
    tracked = project.run("git", "ls-files").stdout.split()
    assert "metrics/evaluate.json" in tracked and "dvclive/train_mlp/metrics.json" in tracked
    assert "plots/report/loss.csv" in tracked and "plots/evaluate/mlp_confusion.csv" in tracked
    assert "dvclive/train_mlp/plots/metrics/val_accuracy.tsv" not in tracked and "models/cnn.keras" not in tracked


def test_second_repro_runs_nothing(project):
    assert project.repro() == []
    assert "up to date" in project.run("dvc", "status").stdout


def test_train_cnn_param_reruns_exactly_train_cnn_evaluate_report(project):
    before = json.loads((project.root / "metrics/evaluate.json").read_text())["cnn"]["accuracy"]
    project.set_params(train_cnn={"epochs": 3})
    proc = project.run("dvc", "repro")
    output = proc.stdout + proc.stderr
    assert re.findall(r"Running stage '([\w-]+)'", output) == ["train-cnn", "evaluate", "report"]
    # Each epoch says how long is left: train-mlp is up to date, so only this stage and the last two.
    assert re.search(r"cnn epoch 1/3: .*\(\d+\.\ds\); ~\S+ left in train-cnn, then evaluate and report$", output, re.M)
    project.commit("cnn: 3 epochs")
    diff = json.loads(project.run("dvc", "metrics", "diff", "HEAD~1", "--json").stdout)
    change = diff["metrics/evaluate.json"]["cnn.accuracy"]
    assert change["old"] == before and change["new"] != before
    params_diff = json.loads(project.run("dvc", "params", "diff", "HEAD~1", "--json").stdout)
    epochs = params_diff["params.yaml"]["train_cnn.epochs"]
    assert (epochs["old"], epochs["new"]) == (1, 3)


def test_normalize_reruns_preprocess_and_everything_after(project):
    project.set_params(preprocess={"normalize": "scale"})
    ran = project.repro()
    assert ran[0] == "preprocess" and sorted(ran) == sorted(ALL[1:])
    assert project.repro() == []
