"""train-cnn: the convolutional network, trained on the train split, early-stopped on validation."""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.lib import params
from stages.lib.layers import add_input, batch_norm, logits
from stages.lib.sections.train_cnn import CNNParams
from stages.lib.stage import run_main
from stages.lib.tf_runtime import keras
from stages.lib.training import train_stage

layers = keras.layers
_DROPOUT = params.number(0, 1, exclusive="max")
WHITENING = "whitening"


def build_cnn(p: dict[str, Any]) -> keras.Model:
    """[Stem ->] conv blocks (conv [-> BN] -> relu, pooled, dropout) -> Dense -> Dropout -> Dense(10) logits:
    the stacked-convolution design of "Implementing a CNN for Fashion-MNIST with TensorFlow", with
    batch normalisation."""
    model = keras.Sequential(name="cnn")
    add_input(model)
    if p["stem"] != "none":
        model.add(layers.Reshape((14, 2, 14, 2)))
        model.add(layers.Permute((1, 3, 2, 4)))  # (row, column, row in patch, column in patch)
        model.add(layers.Reshape((14, 14, 4)))
    if p["stem"] == "whitened_patches":  # weights set from the training images: whiten_patches
        model.add(layers.Conv2D(8, 1, activation="relu", use_bias=False, trainable=False, name=WHITENING))
    convs = p["convs_per_block"]
    for block, filters in enumerate(p["filters"]):
        for _ in range(convs[block] if isinstance(convs, list) else convs):
            # With batch-norm the conv bias is redundant: BN's beta does that job.
            model.add(layers.Conv2D(filters, p["kernel_size"], padding="same", use_bias=not p["batch_norm"]))
            if p["batch_norm"]:
                model.add(batch_norm(p["bn_momentum"]))
            model.add(layers.Activation("relu"))
        if block or p["stem"] == "none":  # a patches stem has already halved the image
            model.add(layers.MaxPooling2D())
        if p["conv_dropout"]:
            model.add(layers.Dropout(p["conv_dropout"]))
    model.add(layers.Flatten())
    model.add(layers.Dense(p["dense_units"], use_bias=not p["batch_norm"]))
    if p["batch_norm"]:
        model.add(batch_norm(p["bn_momentum"]))
    model.add(layers.Activation("relu"))
    if p["dense_dropout"]:
        model.add(layers.Dropout(p["dense_dropout"]))
    model.add(logits())
    return model


def whiten_patches(model: keras.Model, images: np.ndarray, epsilon: float = 1e-2) -> None:
    """Set the whitening stem's weights (if `model` has one) from the 2x2 patches of `images`: the
    eigenvectors of their covariance, each scaled by 1 / sqrt(its eigenvalue + epsilon), with both
    signs (the relu after them keeps each side)."""
    if WHITENING not in {layer.name for layer in model.layers}:
        return
    patches = images.reshape(-1, 14, 2, 14, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 4).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    directions = eigenvectors / np.sqrt(eigenvalues + epsilon)
    kernel = np.concatenate([directions, -directions], axis=1).astype(np.float32)
    model.get_layer(WHITENING).set_weights([kernel.reshape(1, 1, 4, 8)])


if __name__ == "__main__":
    run_main(train_stage, "cnn", build_cnn, CNNParams, whiten_patches)
