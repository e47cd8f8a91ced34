"""The parts of a model that the MLP and the CNN share: the input, the logits, and the precision
the layers compute in. Both models output logits for 10 classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stages.lib.idx import N_CLASSES
from stages.lib.tf_runtime import keras

layers = keras.layers

INPUT_SHAPE = (28, 28)


def add_input(model: keras.Sequential) -> None:
    """28x28 input as one channel. (The training augmentation is the input pipeline's:
    stages/lib/dataset.py; a trained model holds no random layers.)"""
    model.add(keras.Input(INPUT_SHAPE))
    model.add(layers.Reshape((*INPUT_SHAPE, 1)))


def logits() -> layers.Dense:
    """The output layer, in float32 at any precision: softmax and the loss need its range."""
    return layers.Dense(N_CLASSES, name="logits", dtype="float32")


def with_precision(build: Callable[[dict[str, Any]], keras.Model], p: dict[str, Any]) -> keras.Model:
    """`build(p)` with its layers in `p["precision"]` (Keras's dtype policy, recorded in the
    saved model, so a loaded model computes as it was trained)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(p["precision"])
    try:
        return build(p)
    finally:
        keras.config.set_dtype_policy(previous)
