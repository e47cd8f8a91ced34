"""A sweep's options: each default written once, every mistake one line naming the flag, values
resolved once (the deployment's full name, the search's pruner)."""

from __future__ import annotations

import pytest

from flows.cli.args import parse
from flows.sweep.options import SweepOptions


def test_defaults_resolve_the_deployment_and_the_pruner_once():
    grid = SweepOptions(sets=("train_cnn.epochs=1,2",))
    assert grid.deployment == "fmnist-experiment/fmnist-experiment" and grid.prune == "none"
    tpe = SweepOptions(sets=("x=1",), search="tpe", trials=4, deployment="fmnist-experiment-docker")
    assert tpe.deployment == "fmnist-experiment/fmnist-experiment-docker" and tpe.prune == "median"
    assert SweepOptions(sets=("x=1",), deployment="other-flow/d").deployment == "other-flow/d"
    assert SweepOptions(sets=("x=1",), search="random", trials=2, prune="none").prune == "none"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"sets": ()}, "-S: give at least one section.key=values to sweep"),
        ({"search": "bayes"}, "--search: 'bayes' is not allowed; expected one of grid, random, tpe"),
        ({"objective": "rnn"}, "--objective: 'rnn' is not allowed; expected one of mlp, cnn"),
        ({"prune": "hyperband"}, "--prune: 'hyperband' is not allowed; expected one of median, none"),
        ({"search": "tpe"}, "--trials: --search tpe draws its trials: say how many with --trials N"),
        ({"search": "tpe", "trials": 0}, "--trials: 0 is not allowed; expected an integer >= 1"),
        ({"max_parallel": 0}, "--max-parallel: 0 is not allowed; expected an integer >= 1"),
        ({"retries": -1}, "--retries: -1 is not allowed; expected an integer >= 0"),
        ({"retries": True}, "--retries: True is not allowed; expected an integer >= 0"),
        ({"prune_after": 0}, "--prune-after: 0 is not allowed; expected an integer >= 1"),
        ({"lost_after": 30.0}, "--lost-after: 30.0 is not allowed; expected a number of seconds >= 60"),
        ({"api_outage": 5}, "--api-outage: 5 is not allowed; expected a number of seconds >= 10"),
    ],
)
def test_every_mistake_is_one_line_naming_the_flag(given, message):
    with pytest.raises(ValueError) as refused:
        SweepOptions(**{"sets": ("x=1",), **given})
    assert str(refused.value) == message


def test_the_csv_goes_where_it_is_asked_or_beside_the_sweeps_pictures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    given = parse(["sweep", "-S", "x=1,2", "--csv", "out/board.csv"]).options
    assert given.csv == tmp_path / "out" / "board.csv"  # where the command was given, made absolute once
    assert given.leaderboard_csv(tmp_path / "project", "sweep-abc") == tmp_path / "out" / "board.csv"
    default = SweepOptions(sets=("x=1,2",)).leaderboard_csv(tmp_path / "project", "sweep-abc")
    assert default == tmp_path / "project" / "sweeps" / "sweep-abc" / "leaderboard.csv"
    for csv, message in [
        ("board.txt", "--csv: 'board.txt' is not allowed; expected a file name ending in .csv"),
        ("nowhere/board.csv", f"--csv: {tmp_path / 'nowhere'} is not a directory that exists; expected a file in an "
                              "existing one"),
        ("out.csv", f"--csv: {tmp_path / 'out.csv'} is a directory; expected a file name ending in .csv"),
    ]:  # fmt: skip
        (tmp_path / "out.csv").mkdir(exist_ok=True)
        with pytest.raises(ValueError) as refused:
            SweepOptions(sets=("x=1",), csv=csv)
        assert str(refused.value) == message
