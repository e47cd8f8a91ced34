import pytest

from stages import params
from stages.models import CNN_SCHEMA, MLP_SCHEMA
from stages.params import ParamsError, validate
from stages.preprocess import SCHEMA as PREPROCESS_SCHEMA

GOOD_MLP = {
    "epochs": 3, "batch_size": 32, "learning_rate": 0.001, "seed": 0, "patience": 2,
    "lr_schedule": "constant", "augment_flip": False, "augment_shift": 0.0, "steps_per_execution": 1,
    "hidden_units": [64], "dropout": 0.2,
}  # fmt: skip


def test_valid_section_passes_and_normalises_numbers():
    checked = validate("train_mlp", {**GOOD_MLP, "learning_rate": 1}, MLP_SCHEMA)
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
        ({"hidden_units": []}, "train_mlp.hidden_units = [] is not allowed; expected a list of 1 or more"),
        ({"hidden_units": [64, -1]}, "train_mlp.hidden_units = [64, -1] is not allowed"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(change, message):
    with pytest.raises(ParamsError) as err:
        validate("train_mlp", {**GOOD_MLP, **change}, MLP_SCHEMA)
    assert message in str(err.value)


def test_missing_key_is_named():
    values = dict(GOOD_MLP)
    del values["seed"]
    with pytest.raises(ParamsError, match="missing key train_mlp.seed"):
        validate("train_mlp", values, MLP_SCHEMA)


def test_cnn_rejects_more_pooling_blocks_than_the_image_allows():
    good = {**GOOD_MLP, "filters": [8, 16], "convs_per_block": 1, "kernel_size": 3, "batch_norm": True,
            "conv_dropout": 0.1, "dense_units": 16, "dense_dropout": 0.1}  # fmt: skip
    del good["hidden_units"], good["dropout"]
    validate("train_cnn", good, CNN_SCHEMA)
    with pytest.raises(ParamsError, match="train_cnn.filters = .* a list of 1 to 4"):
        validate("train_cnn", {**good, "filters": [8] * 5}, CNN_SCHEMA)


@pytest.mark.parametrize(
    ("value", "ok"), [(5000, True), (0.1, True), (0, False), (1.0, False), (-3, False), ("10%", False)]
)
def test_val_size_is_a_count_or_a_fraction(value, ok):
    section = {"normalize": "scale", "val_size": value, "train_limit": None, "test_limit": None, "seed": 0}
    if ok:
        assert validate("preprocess", section, PREPROCESS_SCHEMA)["val_size"] == value
    else:
        with pytest.raises(ParamsError, match="preprocess.val_size"):
            validate("preprocess", section, PREPROCESS_SCHEMA)


def test_unknown_normalize_lists_the_choices():
    section = {"normalize": "minmax", "val_size": 10, "train_limit": None, "test_limit": None, "seed": 0}
    with pytest.raises(ParamsError, match="expected one of 'scale', 'standardize'"):
        validate("preprocess", section, PREPROCESS_SCHEMA)


def test_load_reports_broken_yaml_and_missing_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train_mlp: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml is not valid YAML"):
        params.load("train_mlp", MLP_SCHEMA, path)
    path.write_text("fetch: {}\n")
    with pytest.raises(ParamsError, match="has no section 'train_mlp'"):
        params.load("train_mlp", MLP_SCHEMA, path)


def test_load_refuses_yaml_tags_that_construct_objects(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train_mlp: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        params.load("train_mlp", MLP_SCHEMA, path)
