"""The search space from -S items: DVC's syntax for a grid, Hydra's grammar for distributions, every
value checked against the params models, a bad item one line naming it."""

from __future__ import annotations

import shutil

import pytest

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
