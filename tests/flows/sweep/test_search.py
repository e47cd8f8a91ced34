"""The search space from -S items, and the Optuna study that draws, prunes and restores trials."""

from __future__ import annotations

import shutil

import pytest

from flows.sweep.search import Restored, Search
from flows.sweep.space import parse
from tests.helpers import PROJECT


@pytest.fixture
def params(tmp_path):
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path / "params.yaml"


SPACE = ["train_cnn.learning_rate=tag(log, interval(0.0001, 0.1))", "train_cnn.dense_units=choice(16,32,64)"]


def _drawn(params, seed: int, n: int = 4) -> list[dict]:
    search = Search("s", parse(SPACE, params), method="tpe", trials=n, seed=seed)
    names = list(search.names())
    return [search.planned[name] for name in names]


def test_a_seeded_search_draws_the_same_points_within_its_space(params):
    first, again, other = _drawn(params, 7), _drawn(params, 7), _drawn(params, 8)
    assert first == again != other
    assert len(first) == 4
    for point in first:
        assert 0.0001 <= point["train_cnn.learning_rate"] <= 0.1 and point["train_cnn.dense_units"] in (16, 32, 64)


def test_the_median_pruner_stops_a_trial_below_the_finished_ones_after_two(params):
    search = Search("s", parse(["train_cnn.learning_rate=0.001,0.002,30"], params), prune="median", prune_after=2)
    names = list(search.names())
    assert names == ["s-1", "s-2", "s-3"]
    for name, curve in (("s-1", [0.80, 0.85]), ("s-2", [0.82, 0.86])):
        assert all(search.report(name, epoch, value) is None for epoch, value in enumerate(curve, start=1))
        search.finish(name, curve[-1], "finished")
    assert search.report("s-3", 1, 0.10) == "pruned at epoch 1 (val_accuracy 0.1000 < median 0.8100)"


def test_a_restored_search_goes_on_to_its_total(params):
    earlier = [Restored("s-1", {"train_cnn.learning_rate": 0.01, "train_cnn.dense_units": 32}, "finished", 0.9,
                        {1: 0.8, 2: 0.9}),
               Restored("s-2", {"train_cnn.learning_rate": 0.001, "train_cnn.dense_units": 16}, "pruned")]  # fmt: skip
    search = Search("s", parse(SPACE, params), method="random", trials=4, seed=0)
    search.restore(earlier)
    assert list(search.names()) == ["s-1", "s-2", "s-3", "s-4"]
    assert len(search.study.trials) == 4  # two told again, two new
