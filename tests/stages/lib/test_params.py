import json

import pytest
import yaml

from stages.lib import params
from stages.lib.params import ParamsError, validate
from stages.lib.sections.preprocess import PreprocessParams
from stages.lib.sections.train_cnn import CNNParams
from stages.lib.sections.train_mlp import MLPParams
from tests.helpers import PROJECT

GOOD_MLP = {
    "epochs": 3, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.001, "seed": 0, "patience": 2,
    "lr_schedule": "constant", "warmup": 0.0, "augment_flip": "none", "augment_translate": 0,
    "steps_per_execution": 1, "ema": 0.0, "label_smoothing": 0.0, "weight_decay": 0.0, "precision": "float32",
    "hidden_units": [64], "dropout": 0.2,
}  # fmt: skip


def test_valid_section_passes_and_normalises_numbers():
    checked = validate("train_mlp", {**GOOD_MLP, "learning_rate": 1}, MLPParams)
    assert checked["learning_rate"] == 1.0
    assert isinstance(checked["learning_rate"], float)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epoch": 3}, "unknown key train_mlp.epoch; allowed keys are epochs, batch_size"),
        ({"epochs": 0}, "train_mlp.epochs = 0 is not allowed; expected an integer >= 1"),
        ({"epochs": "ten"}, "train_mlp.epochs = 'ten' is not allowed; expected an integer >= 1"),
        ({"epochs": True}, "train_mlp.epochs = True is not allowed"),
        ({"dropout": 1.0}, "train_mlp.dropout = 1.0 is not allowed; expected a number >= 0 and < 1"),
        ({"learning_rate": 0}, "train_mlp.learning_rate = 0 is not allowed; expected a number > 0"),
        ({"hidden_units": [0]}, "train_mlp.hidden_units = [0] is not allowed; expected a list of 0 or more positive"),
        ({"hidden_units": "64"}, "train_mlp.hidden_units = '64' is not allowed; expected a list"),
        ({"learning_rate": "1e-3"}, "train_mlp.learning_rate = '1e-3' is not allowed; expected a number > 0"),
        ({"learning_rate": float("nan")}, "train_mlp.learning_rate = nan is not allowed; expected a number > 0"),
        ({"augment_flip": "yes"}, "augment_flip = 'yes' is not allowed; expected one of 'none', 'random', 'alternate'"),
        ({"augment_translate": 5}, "train_mlp.augment_translate = 5 is not allowed; expected an integer from 0 to 4"),
        ({"ema": 1.0}, "train_mlp.ema = 1.0 is not allowed; expected a number >= 0 and < 1"),
        ({"lr_schedule": "step"}, "lr_schedule = 'step' is not allowed; expected one of 'constant', 'cosine', 't"),
        ({"precision": "bf16"}, "precision = 'bf16' is not allowed; expected one of 'float32', 'mixed_bfloat16'"),
        ({"hidden_units": [64, -1]}, "train_mlp.hidden_units = [64, -1] is not allowed"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(change, message):
    with pytest.raises(ParamsError) as err:
        validate("train_mlp", {**GOOD_MLP, **change}, MLPParams)
    assert message in str(err.value)


def test_an_empty_hidden_units_list_is_the_linear_baseline():
    assert validate("train_mlp", {**GOOD_MLP, "hidden_units": []}, MLPParams)["hidden_units"] == []


def test_unknown_keys_are_named_before_missing_ones_and_bad_values():
    values = {**GOOD_MLP, "epochs": 0, "hiden_units": [8]}
    del values["seed"]
    with pytest.raises(ParamsError, match="unknown key train_mlp.hiden_units"):
        validate("train_mlp", values, MLPParams)


def test_missing_key_is_named():
    values = dict(GOOD_MLP)
    del values["seed"]
    with pytest.raises(ParamsError, match="missing key train_mlp.seed"):
        validate("train_mlp", values, MLPParams)


def test_cnn_rejects_more_pooling_blocks_than_the_image_allows():
    good = {**GOOD_MLP, "filters": [8, 16], "convs_per_block": 1, "kernel_size": 3, "batch_norm": True,
            "bn_momentum": 0.99, "stem": "none", "conv_dropout": 0.1, "dense_units": 16,
            "dense_dropout": 0.1}  # fmt: skip
    del good["hidden_units"], good["dropout"]
    validate("train_cnn", good, CNNParams)
    with pytest.raises(ParamsError, match="train_cnn.filters = .* a list of 1 to 4"):
        validate("train_cnn", {**good, "filters": [8] * 5}, CNNParams)


def test_cnn_convs_per_block_is_one_count_or_one_per_block():
    good = {**GOOD_MLP, "filters": [8, 16], "convs_per_block": [1, 2], "kernel_size": 3, "batch_norm": True,
            "bn_momentum": 0.99, "stem": "none", "conv_dropout": 0.1, "dense_units": 16,
            "dense_dropout": 0.1}  # fmt: skip
    del good["hidden_units"], good["dropout"]
    assert validate("train_cnn", good, CNNParams)["convs_per_block"] == [1, 2]
    with pytest.raises(ParamsError, match=r"train_cnn: convs_per_block = \[1, 2, 2\] has 3 entries but filters"):
        validate("train_cnn", {**good, "convs_per_block": [1, 2, 2]}, CNNParams)
    with pytest.raises(ParamsError, match="convs_per_block = 5 is not allowed; expected an integer from 1 to 4"):
        validate("train_cnn", {**good, "convs_per_block": 5}, CNNParams)


@pytest.mark.parametrize(
    ("value", "ok"), [(5000, True), (0.1, True), (0, False), (1.0, False), (-3, False), ("10%", False)]
)
def test_val_size_is_a_count_or_a_fraction(value, ok):
    section = {"normalize": "scale", "val_size": value, "train_limit": None, "test_limit": None, "seed": 0}
    if ok:
        assert validate("preprocess", section, PreprocessParams)["val_size"] == value
    else:
        with pytest.raises(ParamsError, match="preprocess.val_size"):
            validate("preprocess", section, PreprocessParams)


def test_unknown_normalize_lists_the_choices():
    section = {"normalize": "minmax", "val_size": 10, "train_limit": None, "test_limit": None, "seed": 0}
    with pytest.raises(ParamsError, match="expected one of 'scale', 'standardize'"):
        validate("preprocess", section, PreprocessParams)


def test_load_reports_broken_yaml_and_missing_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train_mlp: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml is not valid YAML"):
        params.load("train_mlp", MLPParams, path)
    path.write_text("fetch: {}\n")
    with pytest.raises(ParamsError, match="has no section 'train_mlp'"):
        params.load("train_mlp", MLPParams, path)


def test_load_refuses_yaml_tags_that_construct_objects(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train_mlp: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params.load("train_mlp", MLPParams, path)


def test_params_schema_json_is_what_the_models_generate():
    from tools.schema import SCHEMA_FILE, schema_text

    assert (PROJECT / SCHEMA_FILE).read_text() == schema_text(), "stale: run `python -m tools.schema` and commit"


def test_the_committed_params_pass_both_the_models_and_the_json_schema_and_name_it():
    import jsonschema

    from tools.schema import Params

    text = (PROJECT / "params.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=params.schema.json"  # VS Code's YAML extension
    document = yaml.safe_load(text)
    Params.model_validate(document)
    schema = json.loads((PROJECT / "params.schema.json").read_text())
    jsonschema.validate(document, schema)
    # What an editor would underline: an unknown key, a value out of range, a misspelt choice.
    for section, change in [("train_mlp", {"epoch": 3}), ("train_cnn", {"epochs": 0}),
                            ("train_cnn", {"lr_schedule": "cosin"}), ("preprocess", {"val_size": 0})]:  # fmt: skip
        bad = {**document, section: {**document[section], **change}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
