"""Overrides as `dvc exp run -S` takes them, written into params.yaml only once every section passes the
stages' checks: a refused one leaves the file as it was."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from flows.plumbing.overrides import apply_overrides, check
from stages.lib.params import ParamsError
from tests.helpers import PROJECT


def test_overrides_set_yaml_values_and_keep_comments(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", path)
    apply_overrides(["train_cnn.epochs=3", "train_cnn.filters=[8, 16]", "preprocess.train_limit=null"], path)
    assert "# one conv block per entry" in path.read_text()
    document = yaml.safe_load(path.read_text())
    assert (document["train_cnn"]["epochs"], document["train_cnn"]["filters"]) == (3, [8, 16])
    assert document["preprocess"]["train_limit"] is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train_cnn.epoch=3", "params.yaml has no train_cnn.epoch; keys there: epochs, batch_size"),
        ("training.epochs=3", "params.yaml has no training; keys there: fetch, preprocess"),
        ("epochs=3", "not of the form section.key=value"),
        ("train_cnn.epochs", "not of the form section.key=value"),
        # A value its stage would refuse: refused here, before any stage (and DVC deleting its outputs).
        ("train_cnn.dense_units=abc", "params.yaml: train_cnn.dense_units = 'abc' is not allowed; expected an "
         "integer >= 1"),
        ("train_mlp.dropout=1.5", "params.yaml: train_mlp.dropout = 1.5 is not allowed"),
    ],
)  # fmt: skip
def test_bad_overrides_are_refused_before_anything_is_written(tmp_path, override, message):
    path = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", path)
    before = path.read_bytes()
    with pytest.raises((ValueError, ParamsError), match=re.escape(message)):
        apply_overrides(["report.seed=1", override], path)
    assert path.read_bytes() == before


def test_a_params_file_a_stage_would_refuse_is_refused_without_overrides_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((PROJECT / "params.yaml").read_text().replace("dense_units: 128", "dense_units: many"))
    with pytest.raises(ParamsError, match="train_cnn.dense_units = 'many' is not allowed"):
        check([], path)
