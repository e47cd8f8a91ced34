"""The fused batch norm trains as Keras's layer does, and a trained model is saved as plain Keras."""

import subprocess
import sys

import numpy as np
import pytest

from stages.lib.layers import FusedBatchNormalization, plain
from stages.lib.modelfile import save_model
from stages.lib.tf_runtime import keras
from stages.train_cnn import build_cnn
from tests.stages.tiny import CNN, tiny_splits, train_once


def test_fused_batch_norm_normalises_and_averages_as_keras_does():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 5, 5, 4)).astype(np.float32)
    fused, reference = FusedBatchNormalization(momentum=0.5), keras.layers.BatchNormalization(momentum=0.5)
    fused.build(x.shape), reference.build(x.shape)
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), atol=1e-4)
    # The moving variance takes the batch's with Bessel's correction (n / (n - 1), n = 1,600 here).
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, reference.moving_variance, rtol=2e-3)
    # At inference it is Keras's layer: the same statistics give the same outputs.
    fused.set_weights(reference.get_weights())
    np.testing.assert_array_equal(fused(x, training=False), reference(x, training=False))


def test_a_dense_layers_batch_norm_is_fused_too():
    x = np.random.default_rng(1).normal(size=(32, 6)).astype(np.float32)
    fused, reference = FusedBatchNormalization(), keras.layers.BatchNormalization()
    fused.build(x.shape), reference.build(x.shape)
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), atol=1e-4)


@pytest.mark.slow  # a process of its own, starting TensorFlow
def test_a_trained_model_is_saved_with_keras_own_layers_and_predicts_the_same(tmp_path):
    model, _ = train_once(build_cnn, {**CNN, "stem": "patches", "bn_momentum": 0.6})
    assert any(isinstance(layer, FusedBatchNormalization) for layer in model.layers)
    saved = plain(model)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in saved.layers)
    x = tiny_splits()[1][0][:16]
    np.testing.assert_array_equal(saved.predict(x, verbose=0), model.predict(x, verbose=0))
    save_model(saved, tmp_path / "cnn.keras")
    # Loaded where nothing of this project is imported: plain Keras knows every layer.
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, keras; m = keras.models.load_model(sys.argv[1], safe_mode=True); "
        "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "cnn.keras"), str(tmp_path / "x.npy"),
                    str(tmp_path / "y.npy")], check=True, cwd=tmp_path, capture_output=True)  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0))
