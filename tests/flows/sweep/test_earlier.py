"""What an earlier start of a sweep left as DVC experiments, read back through `dvc.api.exp_show` from
a real git + DVC repo whose experiments (`dvc exp save`) were pushed to its git remote by "workers"."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from flows.sweep.earlier import as_given, finished
from flows.sweep.space import Dimension
from tests.helpers import Project

DIMENSIONS = [
    Dimension("train_cnn.dense_units", "train_cnn.dense_units=interval(8, 64)", low=8, high=64, integer=True),
    Dimension("train_cnn.learning_rate", "train_cnn.learning_rate=tag(log, interval(0.0001, 0.01))", low=0.0001,
              high=0.01, log=True),
    Dimension("train_cnn.filters", "train_cnn.filters=choice([8,16],[16,32])", choices=([8, 16], [16, 32])),
]  # fmt: skip


def save_experiment(project: Project, name: str, point: dict, score: float, curve: list[float]) -> None:
    """A trial as a worker leaves it, without training: its params, its DVCLive summary (in git) and
    curve (in DVC's cache), saved as the experiment `name` (`dvc exp save`), and the workspace put back."""
    params = project.params()
    for key, value in point.items():
        section, _, field = key.partition(".")
        params[section][field] = value
    (project.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    summary = project.read_json("dvclive/train_cnn/metrics.json") | {"val_accuracy": score}
    (project.root / "dvclive/train_cnn/metrics.json").write_text(json.dumps(summary))
    lines = ["step\tval_accuracy", *(f"{step}\t{value}" for step, value in enumerate(curve))]
    (project.root / "dvclive/train_cnn/plots/metrics/val_accuracy.tsv").write_text("\n".join(lines) + "\n")
    project.run("dvc", "exp", "save", "--name", name)
    project.run("git", "checkout", "--", ".")
    project.run("dvc", "checkout", "--force")


@pytest.mark.slow
def test_the_finished_trials_of_a_sweep_come_back_from_the_git_remote_as_they_were(project, tmp_path):
    project.run("git", "init", "-q", "--bare", str(tmp_path / "origin.git"))
    project.run("git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    project.run("dvc", "remote", "add", "-d", "shared", str(tmp_path / "dvc-remote"))
    project.commit("a shared DVC remote")
    project.run("git", "push", "-q", "origin", "main")
    commit = project.run("git", "rev-parse", "HEAD").stdout.strip()
    trials = {
        "sweep-abc-1": ({"train_cnn.dense_units": 17, "train_cnn.learning_rate": 0.00123,
                         "train_cnn.filters": [16, 32]}, 0.4321, [0.3, 0.4321]),
        "sweep-abc-2": ({"train_cnn.dense_units": 48, "train_cnn.learning_rate": 1.0e-04,
                         "train_cnn.filters": [8, 16]}, 0.5, [0.5]),
        "other-1": ({"train_cnn.dense_units": 9, "train_cnn.learning_rate": 0.002,
                     "train_cnn.filters": [8, 16]}, 0.25, [0.25]),  # another sweep's
    }  # fmt: skip
    for name, (point, score, curve) in trials.items():
        save_experiment(project, name, point, score, curve)
    project.run("dvc", "exp", "push", "origin", *trials)
    project.run("dvc", "exp", "remove", *trials)  # here, only what the git remote holds
    shutil.rmtree(project.root / ".dvc/cache")  # and the DVC remote: the trials ran on other machines

    found = finished(project.root, "sweep-abc", commit, "origin", DIMENSIONS, "cnn")
    assert sorted(r.name for r in found) == ["sweep-abc-1", "sweep-abc-2"]
    for restored in found:
        point, score, curve = trials[restored.name]
        assert restored.state == "finished" and restored.value == score
        assert restored.point == point  # each value its own type again: 17, not 17.0; [16, 32], not "[16, 32]"
        assert [type(v) for v in restored.point.values()] == [int, float, list]
        assert restored.curve == {epoch: value for epoch, value in enumerate(curve, start=1)}
    assert finished(project.root, "sweep-none", commit, "origin", DIMENSIONS, "cnn") == []


def test_a_value_as_exp_show_shows_it_is_the_value_the_search_gave():
    dense, rate, filters = DIMENSIONS
    assert as_given(17.0, dense) == 17 and isinstance(as_given(17.0, dense), int)
    assert as_given(0.00123, rate) == 0.00123
    assert as_given("[16, 32]", filters) == [16, 32]
    flags = Dimension("a.flag", "a.flag=true,false", choices=(True, False))
    assert as_given("False", flags) is False
    words = Dimension("a.kind", "a.kind=relu,1e-05", choices=("relu", 1e-05))
    assert as_given("relu", words) == "relu" and as_given(1e-05, words) == 1e-05
    assert as_given("[1, 2]", Dimension("a.b", "a.b=x", choices=("x",))) == [1, 2]  # not a choice: read as YAML
