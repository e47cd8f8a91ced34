"""The training loop: deterministic, learning, early-stopped on validation, in either precision."""

import numpy as np
import pytest

from stages.lib.modelfile import save_model
from stages.lib.training import summarize
from stages.train_cnn import build_cnn
from stages.train_mlp import build_mlp
from tests.stages.tiny import CNN, MLP, tiny_splits, train_once

AUGMENTED_CNN = {**CNN, "lr_schedule": "cosine", "augment_flip": "alternate", "augment_translate": 2, "ema": 0.9}
BFLOAT16_CNN = {**AUGMENTED_CNN, "precision": "mixed_bfloat16"}


@pytest.mark.parametrize(
    ("build", "p"),
    [(build_mlp, MLP), (build_cnn, CNN), (build_cnn, AUGMENTED_CNN), (build_cnn, BFLOAT16_CNN)],
    ids=["mlp", "cnn", "cnn-augmented-cosine-ema", "cnn-mixed-bfloat16"],
)
def test_same_params_give_the_same_model(build, p):
    model_a, history_a = train_once(build, p)
    model_b, history_b = train_once(build, p)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(history_a) == strip(history_b)
    assert [row["epoch"] for row in history_a] == [1, 2]


def test_training_learns_the_synthetic_classes():
    _, history = train_once(build_mlp, {**MLP, "epochs": 5})
    assert history[-1]["val_accuracy"] > 0.5  # chance is 0.1


def test_early_stopping_keeps_the_best_epoch():
    # A learning rate this large wrecks the model after the first epochs; patience 1 stops it.
    model, history = train_once(build_mlp, {**MLP, "epochs": 30, "patience": 1, "learning_rate": 0.9})
    summary = summarize(model, history)
    assert summary["epochs_run"] < 30
    assert summary["val_accuracy"] == round(max(r["val_accuracy"] for r in history), 6)
    assert summary["params"] == model.count_params()


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_and_logits(tmp_path):
    import keras

    model, history = train_once(build_cnn, {**BFLOAT16_CNN, "epochs": 3})
    assert history[-1]["val_accuracy"] > 0.3
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert {(layer.compute_dtype, layer.variable_dtype) for layer in convs} == {("bfloat16", "float32")}
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    assert model.get_layer("logits").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the policy is the model's, not the process's
    # Saved and loaded, it computes as it was trained: same policy, same logits.
    save_model(model, tmp_path / "cnn.keras")
    loaded = keras.models.load_model(tmp_path / "cnn.keras", safe_mode=True)
    assert [layer.compute_dtype for layer in loaded.layers] == [layer.compute_dtype for layer in model.layers]
    x = tiny_splits()[1][0][:8]
    logits = loaded.predict(x, verbose=0)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, model.predict(x, verbose=0))


@pytest.mark.parametrize("ema", [0.0, 0.9], ids=["weights", "moving-average"])
def test_the_kept_model_is_the_one_validation_scored(ema):
    """With a moving average of the weights, the average is validated and kept, not the raw weights."""
    p = {**MLP, "epochs": 3, "patience": 3, "ema": ema}
    model, history = train_once(build_mlp, p)
    (x_val, y_val) = tiny_splits()[1]
    accuracy = float((model.predict(x_val, verbose=0).argmax(axis=1) == y_val).mean())
    assert accuracy == pytest.approx(max(row["val_accuracy"] for row in history), abs=1e-6)
    if ema:
        assert type(model.optimizer).__name__ == "Adam" and model.optimizer.use_ema
