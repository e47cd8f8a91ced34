"""train-cnn: the builder's layers and what its params change; training itself is
tests/stages/lib/test_training.py."""

from stages.train_cnn import build_cnn
from tests.stages.tiny import CNN, train_once


def test_the_cnn_maps_images_to_ten_logits():
    model = build_cnn(CNN)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "linear"


def test_convs_per_block_may_differ_per_block_and_label_smoothing_with_weight_decay_train():
    p = {**CNN, "convs_per_block": [1, 2], "label_smoothing": 0.1, "weight_decay": 0.01, "epochs": 3}
    model, history = train_once(build_cnn, p)
    assert [type(layer).__name__ for layer in model.layers].count("Conv2D") == 3
    assert type(model.optimizer).__name__ == "AdamW"
    assert history[-1]["val_accuracy"] > 0.3
