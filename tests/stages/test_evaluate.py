"""evaluate: probabilities from the average of the views' logits, and from the image alone."""

import numpy as np
import pytest

from stages.evaluate import predict
from stages.lib.scoring import softmax
from stages.lib.tf_runtime import keras


@pytest.mark.parametrize("tta", ["none", "flip", "flip_shift"])
def test_test_time_augmentation_averages_the_logits_of_the_views(tta):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    images = np.random.default_rng(0).normal(size=(5, 28, 28)).astype(np.float32)
    augmented, single = predict(model, images, tta, batch_size=2)
    logits = model.predict(images, verbose=0).astype(np.float64)
    np.testing.assert_allclose(single, softmax(logits), atol=1e-6)
    if tta == "none":
        np.testing.assert_allclose(augmented, single)
    if tta == "flip":
        mirrored = model.predict(images[:, :, ::-1], verbose=0).astype(np.float64)
        np.testing.assert_allclose(augmented, softmax((logits + mirrored) / 2), atol=1e-6)
    assert augmented.shape == (5, 10) and np.allclose(augmented.sum(axis=1), 1)
