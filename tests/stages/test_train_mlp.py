"""train-mlp: the builder's layers; training itself is tests/stages/lib/test_training.py."""

from stages.train_mlp import build_mlp
from tests.stages.tiny import MLP, train_once


def test_the_mlp_maps_images_to_ten_logits():
    model = build_mlp(MLP)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "linear"


def test_an_empty_hidden_units_list_trains_a_softmax_regression():
    model, history = train_once(build_mlp, {**MLP, "hidden_units": [], "epochs": 4})
    assert [type(layer).__name__ for layer in model.layers] == ["Reshape", "Flatten", "Dense"]
    assert model.count_params() == 28 * 28 * 10 + 10
    assert history[-1]["val_accuracy"] > 0.5
