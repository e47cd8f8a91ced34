"""The training loop: deterministic, learning, early-stopped on validation, in either precision."""

import numpy as np
import pytest

from stages.lib.modelfile import save_model
from stages.lib.training import learning_rate, summarize
from stages.train_cnn import WHITENING, build_cnn, whiten_patches
from stages.train_mlp import build_mlp
from tests.stages.tiny import CNN, MLP, tiny_splits, train_once

AUGMENTED_CNN = {**CNN, "lr_schedule": "cosine", "augment_flip": "alternate", "augment_translate": 2, "ema": 0.9}
BFLOAT16_CNN = {**AUGMENTED_CNN, "precision": "mixed_bfloat16"}
# The fast-training recipe's levers: a whitened patches stem, Nesterov SGD on a triangular schedule,
# fast batch-norm statistics under a weight average, label smoothing.
RECIPE_CNN = {**CNN, "stem": "whitened_patches", "optimizer": "nesterov", "learning_rate": 0.05,
              "lr_schedule": "triangular", "warmup": 0.3, "bn_momentum": 0.6, "ema": 0.9,
              "label_smoothing": 0.1}  # fmt: skip


# Seeding: float32, the default. The test process trains on one thread (tests/conftest.py): on two,
# under the inner loop's load, two trainings have rarely differed, once in mixed_bfloat16 and once
# in float32 (docs/pipeline.md, "What is reproducible where"); bfloat16's own test is below.
@pytest.mark.parametrize(
    ("build", "p"),
    [
        (build_mlp, MLP),
        (build_cnn, CNN),
        (build_cnn, AUGMENTED_CNN),
        (build_cnn, RECIPE_CNN),
    ],
    ids=["mlp", "cnn", "cnn-augmented-cosine-ema", "cnn-recipe"],
)
def test_same_params_give_the_same_model(build, p):
    model_a, history_a = train_once(build, p)
    model_b, history_b = train_once(build, p)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(history_a) == strip(history_b)
    assert [row["epoch"] for row in history_a] == [1, 2]


def test_schedules_rise_over_the_warmup_and_end_at_zero():
    steps_per_epoch = 10
    triangle = learning_rate({**CNN, "lr_schedule": "triangular", "warmup": 0.25, "learning_rate": 0.4, "epochs": 4},
                             steps_per_epoch)  # fmt: skip
    assert [float(triangle(step)) for step in (0, 5, 10, 25, 40)] == pytest.approx([0, 0.2, 0.4, 0.2, 0])
    cosine = learning_rate({**CNN, "lr_schedule": "cosine", "warmup": 0.5, "learning_rate": 0.4, "epochs": 2},
                           steps_per_epoch)  # fmt: skip
    assert [float(cosine(step)) for step in (0, 5, 10, 15, 20)] == pytest.approx([0, 0.2, 0.4, 0.2, 0], abs=1e-6)
    assert learning_rate({**CNN, "lr_schedule": "constant", "learning_rate": 0.4}, steps_per_epoch) == 0.4


def test_the_whitened_stem_decorrelates_the_training_patches():
    p = {**CNN, "stem": "whitened_patches"}
    model = build_cnn(p)
    x = tiny_splits()[0][0]
    x = (x - x.mean()) / x.std()  # standardised, as preprocess makes the real images
    whiten_patches(model, x)
    patches = x.reshape(-1, 14, 2, 14, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 4)
    kernel = model.get_layer(WHITENING).get_weights()[0].reshape(4, 8)
    covariance = np.cov(patches @ kernel[:, :4], rowvar=False)  # one sign of each direction
    # Uncorrelated, each of variance eigenvalue / (eigenvalue + epsilon): near 1.
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0, atol=1e-4)
    assert all(0.8 < variance <= 1 for variance in np.diag(covariance))
    assert not model.get_layer(WHITENING).trainable


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
