"""A sweep across two machines: two process workers in separate directories, a real Prefect
server, a bare git repo and a DVC remote; every point a DVC experiment in the starting checkout. A
sweep's name, which lets the same sweep started again resume, is decided without one."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from datetime import datetime, timezone

import pytest

from flows.sweep.flow import sweep_name
from tests.flows.servers import Team, make_team, running_postgres, running_prefect_server, start_worker, stop
from tests.helpers import CURATED_PLOTS, wait_for

SLOW = pytest.mark.slow(minutes=23)  # the tests on the team's server

# Two points side by side, one per machine, then a hopeless third that the median of the two prunes
# (the median needs two finished trials). The grid of two keys and more is test_search.py's.
GRID = ["-S", "train_cnn.learning_rate=0.001,0.002,30", "-S", "train_cnn.epochs=3", "--max-parallel", "2",
        "--prune", "median"]  # fmt: skip


def test_the_same_search_on_the_same_commit_has_the_same_name_and_any_other_another():
    name = sweep_name("abc", ["x=1,2", "y=3"])
    assert name == sweep_name("abc", ["y=3", "x=1,2"]) and re.fullmatch(r"sweep-[0-9a-f]{6}", name)
    others = [sweep_name("abd", ["x=1,2", "y=3"]), sweep_name("abc", ["x=1,2"]),
              sweep_name("abc", ["x=1,2", "y=3"], "tpe", 0), sweep_name("abc", ["x=1,2", "y=3"], "tpe", 1),
              sweep_name("abc", ["x=1,2", "y=3"], "tpe", 0, "mlp")]  # fmt: skip
    assert len({name, *others}) == 6
    assert sweep_name("abc", ["x=1,2"], "grid", seed=7) == sweep_name("abc", ["x=1,2"])  # a grid draws nothing


# --- real workers ---


@pytest.fixture(scope="module")
def team(reproduced, tmp_path_factory):
    """The fmnist-experiment deployment on a process pool, taken by two workers ("machines")
    that each run one point at a time, in directories of their own, on a server of their own on
    PostgreSQL, as a team's is (docs/sweeps.md). On SQLite, shared with the rest of a busy suite,
    the server once stalled for two minutes ("database is locked"), its heartbeats with it, and the
    sweep took a live point for lost."""
    base = tmp_path_factory.mktemp("sweep")
    with running_postgres() as database, running_prefect_server(base / "prefect", database) as server:
        team = make_team(reproduced, server, base)
        team.checkout.run(
            "prefect", "work-pool", "create", "fmnist-experiments", "--type", "process", "--overwrite", env=team.env
        )
        team.checkout.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment", env=team.env)
        workers = [
            start_worker(team, "fmnist-experiments", name, "--limit", "1") for name in ("machine-a", "machine-b")
        ]
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


@SLOW
def test_a_sweep_over_two_machines_ends_as_experiments_in_the_checkout_and_a_hopeless_trial_pruned(team):
    proc = sweep(team, *GRID)
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert [r["status"] for r in table] == ["done", "done", "pruned"], table
    done, pruned = table[:2], table[-1]
    assert {r["where"] for r in done} == {"machine-a", "machine-b"}
    objective = [r["cnn_val_accuracy"] for r in done]
    assert objective == sorted(objective, reverse=True)  # ranked by validation: test scores sit beside
    # Pruned before its last epoch, by the median of the two finished: no experiment.
    assert pruned["train_cnn.learning_rate"] == "30"
    epoch = int(re.match(r"pruned at epoch (\d+) \(val_accuracy [\d.]+ < median [\d.]+\)$", pruned["error"])[1])
    assert epoch < 3
    found = experiments(team)
    assert pruned["experiment"] not in found
    for row in done:
        exp = found[row["experiment"]]
        assert exp["params"]["train_cnn"]["learning_rate"] == float(row["train_cnn.learning_rate"])
        assert exp["metrics"]["cnn"]["accuracy"] == row["cnn_accuracy"]
        assert exp["metrics"]["mlp"]["macro_f1"] == row["mlp_macro_f1"]
    printed = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(printed) if line.endswith("leaderboard (best first):"))
    assert [line.split()[0] for line in printed[start + 2 : start + 5]] == [r["experiment"] for r in table]
    # The user's DVC compares the points' learning curves, and keeps the winner.
    names = [r["experiment"] for r in done]
    plots = json.loads(team.checkout.run("dvc", "plots", "diff", *names, "--json").stdout)["data"]
    assert set(plots) == set(CURATED_PLOTS)
    curves = plots["plots/report/accuracy.csv"][0]["content"]["data"]["values"]
    assert {row["rev"] for row in curves if row["series"] == "CNN validation"} == set(names)
    team.checkout.run("dvc", "exp", "branch", names[0], "best-point")
    kept = team.checkout.run("git", "show", "best-point:metrics/evaluate.json").stdout
    assert json.loads(kept)["cnn"]["accuracy"] == table[0]["cnn_accuracy"]


@SLOW
def test_the_same_sweep_again_trains_nothing(team):
    first = {r["experiment"]: r for r in team.latest_artifact("fmnist-sweep-leaderboard")}
    after = datetime.now(timezone.utc).isoformat()
    proc = sweep(team, *GRID)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    # Every point ended before: each finished one is restored from its run, the pruned one stays
    # pruned, and none runs again.
    assert [r["status"] for r in table] == ["done", "done", "pruned"], table
    assert [r["ran"] for r in table[:2]] == ["none: done before"] * 2, table
    assert table[-1]["error"].startswith("pruned")
    assert {r["experiment"]: r["cnn_accuracy"] for r in table[:2]} == {
        n: r["cnn_accuracy"] for n, r in first.items() if r["status"] == "done"
    }
    assert team.server.flow_runs(flows={"name": {"any_": ["fmnist-experiment"]}}, start_time={"after_": after}) == []
    shown = team.checkout.run("dvc", "exp", "show", "--json").stdout
    assert all(name in shown for name, row in first.items() if row["status"] == "done")


@SLOW
def test_a_failed_point_is_a_row_and_the_others_complete(team):
    # 2000 validation images leave none of the 2000 training images to train on: preprocess fails
    # at work, which no check before it can see. The other point is the commit's (restored).
    proc = sweep(team, "-S", "preprocess.val_size=500,2000", "--max-parallel", "2")
    assert proc.returncode == 1
    assert "1 of 2 points failed" in proc.stderr.splitlines()[-1]
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert [r["status"] for r in table] == ["done", "failed"]
    assert table[-1]["preprocess.val_size"] == "2000"
    assert "must leave at least one on each side" in table[-1]["error"]
    assert len(team.server.flow_runs(name={"any_": [table[-1]["experiment"]]})) == 1  # its own error: no retry


# The refusals that need the team's server; the others are decided without one
# (tests/flows/sweep/test_preflight.py, test_space.py, test_options.py, tests/flows/cli/test_args.py).
@SLOW
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-S", "train_cnn.epochs=1", "--deployment", "nope"],
         "no deployment 'fmnist-experiment/nope' on the Prefect server"),
        (["-S", "train_cnn.epochs=1", "--deployment", "fmnist-experiment-kubernetes"],
         "of deployment 'fmnist-experiment/fmnist-experiment-kubernetes' does not exist"),
    ],
)  # fmt: skip
def test_the_sweep_refuses_before_any_work(team, tmp_path, args, message):
    user = team.checkout.copy_to(tmp_path / "user")
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


# --- searches ---


def _experiments_named(team: Team, prefix: str) -> dict[str, dict]:
    return {name: exp for name, exp in experiments(team).items() if name.startswith(prefix)}


@SLOW
def test_a_seeded_tpe_search_stopped_after_a_trial_goes_on_to_its_total(team):
    """Two trials, one at a time, stopped once the first has finished: the second, which the stop
    finds taken by a worker (running, or just taken) or not yet sent, is cancelled; started again, the
    search is told the first and runs the second, and the two end as DVC experiments within the space.
    (One at a time: two side by side could both finish before the stop.)"""
    sets = ["train_cnn.learning_rate=tag(log, interval(0.0005, 0.02))", "train_cnn.dense_units=interval(8, 48)"]
    args = ["--search", "tpe", "--trials", "2", "--seed", "3", "--max-parallel", "1", "--prune", "none",
            *(a for item in sets for a in ("-S", item))]  # fmt: skip
    name = sweep_name(team.checkout.run("git", "rev-parse", "HEAD").stdout.strip(), sets, "tpe", 3, "cnn")
    mine = {"tags": {"all_": [f"fmnist-sweep:{name}"]}}
    # SIGINT as a terminal's Ctrl-C sends it: a suite started in the background (`&`) passes its
    # children SIGINT ignored, and the sweep would run on through it.
    log = team.base / "tpe-stopped.log"
    with log.open("w") as out:
        first = subprocess.Popen(["python", "-m", "flows", "sweep", *args], cwd=team.checkout.root, env=team.env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip  # noqa: PLW1509
    try:

        def one_finished() -> bool:
            assert first.poll() is None, f"the sweep ended: {log.read_text()[-3000:]}"
            return any(r["state"]["type"] == "COMPLETED" for r in team.server.flow_runs(**mine))

        wait_for(one_finished, 900, "a trial finished", poll=2)
        first.send_signal(signal.SIGINT)  # stopped after a trial: the other is cancelled
        first.wait(180)  # its worker carries the cancellation out: seconds, a minute or two on a busy machine
    finally:
        stop(first)
    after = datetime.now(timezone.utc).isoformat()
    again = sweep(team, *args)
    assert again.returncode == 0, again.stderr[-4000:]
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert len(table) == 2 and {r["status"] for r in table} == {"done"}, table
    assert sum(r["ran"] == "none: done before" for r in table) == 1  # told to the search again, not trained
    started = team.server.flow_runs(start_time={"after_": after}, **mine)
    # Only the cancelled trial ran again, and none that the stop cancelled went on (the stopped sweep's
    # last line says how it left each).
    assert len(started) == 1, ([(r["name"], r["state"]["type"]) for r in team.server.flow_runs(**mine)],
                               log.read_text().strip().splitlines()[-1:])  # fmt: skip
    objective = [r["cnn_val_accuracy"] for r in table]
    assert objective == sorted(objective, reverse=True)  # ranked by validation accuracy, test figures beside
    found = _experiments_named(team, name)
    assert sorted(found) == sorted(r["experiment"] for r in table)
    for exp in found.values():  # every trial drawn within its space, an integer key as an integer
        cnn = exp["params"]["train_cnn"]
        assert 0.0005 <= cnn["learning_rate"] <= 0.02 and 8 <= cnn["dense_units"] <= 48
        assert isinstance(cnn["dense_units"], int)
