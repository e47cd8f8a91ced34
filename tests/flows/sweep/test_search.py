"""The search space from -S items, and the Optuna study that draws, prunes and restores trials."""

from __future__ import annotations

import shutil

import pytest

from flows.sweep.search import Restored, Search
from flows.sweep.space import SpaceError, grid, overrides, parse
from tests.helpers import PROJECT


@pytest.fixture
def params(tmp_path):
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path / "params.yaml"


def test_a_grid_is_dvcs_syntax(params):
    dimensions = parse(["train_cnn.dense_units=16,32", "train_mlp.epochs=range(1,3)"], params)
    assert [overrides(point) for point in grid(dimensions)] == [
        ["train_cnn.dense_units=16", "train_mlp.epochs=1"], ["train_cnn.dense_units=16", "train_mlp.epochs=2"],
        ["train_cnn.dense_units=32", "train_mlp.epochs=1"], ["train_cnn.dense_units=32", "train_mlp.epochs=2"],
    ]  # fmt: skip
    lists = parse(["train_cnn.filters=[8,16],[16,32]", "train_cnn.learning_rate=1e-3"], params)
    assert [overrides(point) for point in grid(lists)] == [
        ["train_cnn.filters=[8, 16]", "train_cnn.learning_rate=0.001"],
        ["train_cnn.filters=[16, 32]", "train_cnn.learning_rate=0.001"],
    ]


def test_distributions_follow_the_grammar_and_the_keys_types(params):
    lr, units, dropout, epochs = parse(
        ["train_cnn.learning_rate=tag(log, interval(0.0005, 0.005))", "train_cnn.dense_units=interval(16, 256)",
         "train_cnn.conv_dropout=choice(0.1,0.2)", "train_cnn.epochs=range(2,5)"], params,
    )  # fmt: skip
    assert (lr.distribution().low, lr.distribution().high, lr.distribution().log) == (0.0005, 0.005, True)
    assert type(units.distribution()).__name__ == "IntDistribution"  # dense_units is an integer in params.yaml
    assert (units.distribution().low, units.distribution().high) == (16, 256)
    assert dropout.distribution().choices == ("0.1", "0.2") and dropout.from_optuna("0.2") == 0.2
    assert epochs.choices == (2, 3, 4)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train_cnn.learning_rate=interval(5,1)", "the interval's low end 5 is not below its high end 1"),
        ("train_cnn.dense_units=foo(1,2)", "is not of the form section.key=values; values are a value, a,b,c, choice("),
        ("train_cnn.dense_units=choice(a,b)", "train_cnn.dense_units = 'a' is not allowed; expected an integer >= 1"),
        ("train_cnn.conv_dropout=interval(0.1,1.5)", "train_cnn.conv_dropout = 1.5 is not allowed; expected a number"),
        ("train_cnn.learning_rate=tag(log, interval(0, 1))", "a log interval needs a low end above 0"),
        ("train_cnn.nope=1,2", "params.yaml has no train_cnn.nope"),
    ],
)
def test_a_bad_item_is_one_line_naming_it(params, item, message):
    with pytest.raises(ValueError, match=None) as error:
        parse([item], params)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_grid_refuses_values_to_draw_and_a_key_given_twice(params):
    with pytest.raises(SpaceError, match="draws values: search it with --search random or tpe"):
        grid(parse(["train_cnn.learning_rate=interval(0.001,0.01)"], params))
    with pytest.raises(SpaceError, match="train_cnn.epochs is given twice"):
        parse(["train_cnn.epochs=1,2", "train_cnn.epochs=3"], params)


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
