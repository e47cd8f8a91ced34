"""A sweep across two machines: two process workers in separate directories, a real Prefect
server, a bare git repo and a DVC remote; every point a DVC experiment in the starting checkout."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from flows.params import expand_grid
from flows.sweep import format_table, leaderboard, sweep_name, varying_keys
from tests.flows.servers import Team, make_team, start_worker, stop

GRID = ["-S", "train_cnn.dense_units=16,32", "-S", "train_mlp.epochs=1,2"]


# --- the parts, without a server ---


def test_the_grid_is_dvcs_syntax():
    assert expand_grid(["a.b=1,2", "c.d=x,y"]) == [["a.b=1", "c.d=x"], ["a.b=1", "c.d=y"],
                                                  ["a.b=2", "c.d=x"], ["a.b=2", "c.d=y"]]  # fmt: skip
    assert expand_grid(["a.b=range(1,4)"]) == [["a.b=1"], ["a.b=2"], ["a.b=3"]]
    assert expand_grid(["a.units=[32,64],[128]", "a.lr=0.001"]) == [["a.units=[32,64]", "a.lr=0.001"],
                                                                   ["a.units=[128]", "a.lr=0.001"]]  # fmt: skip


@pytest.mark.parametrize(
    ("sets", "message"),
    [(["a.b=1", "a.b=2"], "a.b is given twice"), (["a.b=(1"], "not of the form section.key=value")],
)
def test_a_bad_grid_is_refused(sets, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(sets)


def test_the_leaderboard_puts_the_best_first_and_failures_last():
    points = {"s-1": ["t.lr=0.1", "t.seed=1"], "s-2": ["t.lr=0.2", "t.seed=1"], "s-3": ["t.lr=0.3", "t.seed=1"]}
    rows = [
        {"experiment": "s-1", "status": "done", "cnn_accuracy": 0.8, "mlp_accuracy": 0.7},
        {"experiment": "s-2", "status": "failed", "error": "params.yaml: t.lr = 0.2 is not allowed"},
        {"experiment": "s-3", "status": "done", "cnn_accuracy": 0.9, "mlp_accuracy": 0.6},
    ]
    table = leaderboard(rows, points, varying_keys(points))
    assert [r["experiment"] for r in table] == ["s-3", "s-1", "s-2"]
    assert "t.lr" in table[0] and "t.seed" not in table[0]  # only the params that vary
    assert "t.lr = 0.2 is not allowed" in format_table(table).splitlines()[-1]
    assert sweep_name("abc", ["x=1,2", "y=3"]) == sweep_name("abc", ["y=3", "x=1,2"]) != sweep_name("abd", ["y=3"])


# --- real workers ---


@pytest.fixture(scope="module")
def team(reproduced, prefect_server, tmp_path_factory):
    """The fmnist-experiment deployment on a process pool, taken by two workers ("machines")
    that each run one point at a time, in directories of their own."""
    team = make_team(reproduced, prefect_server, tmp_path_factory.mktemp("sweep"))
    team.checkout.run(
        "prefect", "work-pool", "create", "fmnist-experiments", "--type", "process", "--overwrite", env=team.env
    )
    team.checkout.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment", env=team.env)
    workers = [start_worker(team, "fmnist-experiments", name, "--limit", "1") for name in ("machine-a", "machine-b")]
    try:
        yield team
    finally:
        for worker in workers:
            stop(worker)


def sweep(team: Team, *args: str) -> subprocess.CompletedProcess[str]:
    return team.checkout.run("python", "-m", "flows", "sweep", *args, env=team.env, check=False)


def experiments(team: Team) -> dict[str, dict]:
    """{experiment name: its params and metrics}, from `dvc exp show --json` in the user's checkout."""
    found: dict[str, dict] = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("name") and isinstance(node.get("data"), dict) and node["data"].get("params"):
                data = node["data"]
                found[node["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": data["metrics"]["metrics/evaluate.json"]["data"],
                }
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(team.checkout.run("dvc", "exp", "show", "--json").stdout))
    return found


@pytest.mark.slow
def test_a_sweep_over_two_machines_ends_as_experiments_in_the_checkout(team):
    proc = sweep(team, *GRID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert len(table) == 4 and {r["status"] for r in table} == {"done"}
    assert {r["where"] for r in table} == {"machine-a", "machine-b"}
    accuracies = [r["cnn_accuracy"] for r in table]
    assert accuracies == sorted(accuracies, reverse=True)
    found = experiments(team)
    for row in table:
        exp = found[row["experiment"]]
        assert exp["params"]["train_cnn"]["dense_units"] == int(row["train_cnn.dense_units"])
        assert exp["params"]["train_mlp"]["epochs"] == int(row["train_mlp.epochs"])
        assert exp["metrics"]["cnn"]["accuracy"] == row["cnn_accuracy"]
        assert exp["metrics"]["mlp"]["macro_f1"] == row["mlp_macro_f1"]
    printed = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(printed) if line.endswith("leaderboard (best first):"))
    assert [line.split()[0] for line in printed[start + 2 : start + 6]] == [r["experiment"] for r in table]
    # The user's DVC compares the points' learning curves, and keeps the winner.
    names = [r["experiment"] for r in table]
    plots = team.checkout.run("dvc", "plots", "diff", *names[:2], "--json").stdout
    assert "dvclive/train_cnn/plots/metrics/val_accuracy.tsv" in plots and "Accuracy per epoch" in plots
    team.checkout.run("dvc", "exp", "branch", names[0], "best-point")
    kept = team.checkout.run("git", "show", "best-point:metrics/evaluate.json").stdout
    assert json.loads(kept)["cnn"]["accuracy"] == table[0]["cnn_accuracy"]


@pytest.mark.slow
def test_the_same_sweep_again_trains_nothing(team):
    first = {r["experiment"]: r for r in team.latest_artifact("fmnist-sweep-leaderboard")}
    after = datetime.now(timezone.utc).isoformat()
    proc = sweep(team, *GRID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    # Two points that share a training (same train_cnn params) trained it side by side the first
    # time: one model, two records that differ in the seconds they took. A point restored with
    # the other's record redraws its report (which shows those seconds); nothing else runs.
    assert {r["ran"] for r in table} <= {"none", "report"}, table
    assert {r["experiment"]: r["cnn_accuracy"] for r in table} == {n: r["cnn_accuracy"] for n, r in first.items()}
    logs = team.logs_since(after)
    assert not [line for line in logs if line.startswith(("Running stage 'train", "Running stage 'evaluate"))]
    restored = [line for line in logs if "is cached - skipping run" in line]
    assert sum("'train-cnn'" in line for line in restored) >= 2, logs  # the two points with dense_units 16


@pytest.mark.slow
def test_a_failed_point_is_a_row_and_the_others_complete(team):
    # 0 is out of range; the CNN of every point is the commit's, so no point trains one.
    proc = sweep(team, "-S", "train_mlp.epochs=1,2,3,0", "--max-parallel", "2")
    assert proc.returncode == 1
    assert "1 of 4 points failed" in proc.stderr.splitlines()[-1]
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert [r["status"] for r in table] == ["done", "done", "done", "failed"]
    assert table[-1]["train_mlp.epochs"] == "0"
    assert "train_mlp.epochs = 0 is not allowed" in table[-1]["error"]
    assert not [r for r in table[:3] if "train-cnn" in r["ran"]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (None, ["-S", "train_cnn.nope=1,2"], "params.yaml has no train_cnn.nope"),
        (None, ["-S", "train_cnn.epochs=1", "--deployment", "nope"],
         "no deployment 'fmnist-experiment/nope' on the Prefect server"),
        (None, ["-S", "train_cnn.epochs=1", "--deployment", "fmnist-experiment-kubernetes"],
         "of deployment 'fmnist-experiment/fmnist-experiment-kubernetes' does not exist"),
        (["dvc", "remote", "remove", "shared"], ["-S", "train_cnn.epochs=1"], "no default DVC remote in .dvc/config"),
        (["git", "commit", "-q", "--allow-empty", "-m", "local only"], ["-S", "train_cnn.epochs=1"],
         "is not on the git remote origin"),
    ],
)  # fmt: skip
def test_the_sweep_refuses_before_any_work(team, tmp_path, change, args, message):
    user = team.checkout.copy_to(tmp_path / "user")
    if change:
        user.run(*change)
    if "kubernetes" in " ".join(args):  # a deployment whose work pool was deleted since
        user.run(
            "prefect", "work-pool", "create", "fmnist-kubernetes", "--type", "process", "--overwrite", env=team.env
        )
        user.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment-kubernetes", env=team.env)
        user.run("prefect", "--no-prompt", "work-pool", "delete", "fmnist-kubernetes", env=team.env)
    sweeps = {"name": {"any_": ["fmnist-sweep"]}}
    runs_before = len(team.server.flow_runs(flows=sweeps))
    proc = user.run("python", "-m", "flows", "sweep", *args, env=team.env, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert message in last, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert len(team.server.flow_runs(flows=sweeps)) == runs_before  # refused before the sweep's run started
