"""train-cnn: the convolutional network, trained on the train split, early-stopped on validation."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import model_validator

from stages.lib import params
from stages.lib.layers import add_input, batch_norm, logits
from stages.lib.stage import run_main
from stages.lib.tf_runtime import keras
from stages.lib.training import TrainParams, train_stage

layers = keras.layers
_DROPOUT = params.number(0, 1, exclusive="max")
WHITENING = "whitening"


class CNNParams(TrainParams):
    stem: params.choice("none", "patches", "whitened_patches")
    """What the first block sees: none, the 28x28 image; patches, its 2x2 patches as 4 channels at
    14x14 (space-to-depth: nothing lost), in place of the first block's pooling, so every layer
    after it has the same shape, for a quarter of the first block's batch norm and relu work;
    whitened_patches, those patches whitened (a frozen 1x1 convolution from the training images'
    patch covariance, each direction with both signs, then relu: 8 channels), as airbench's first
    layer."""
    filters: params.list_of(
        # Each block halves the 28x28 input by pooling: four blocks leave 1x1.
        params.integer(1),
        what="positive integers (one conv block each)",
        max_length=4,
    )
    """Filters of each conv block; each block ends in 2x2 max-pooling."""
    convs_per_block: Annotated[
        params.integer(1, 4) | params.list_of(params.integer(1, 4), what="", max_length=4),
        params.Allowed("an integer from 1 to 4, or a list of them, one per block"),
    ]
    """Convolutions in every block, or per block (a list as long as `filters`)."""
    kernel_size: params.integer(1, 7)
    batch_norm: params.boolean()
    """Batch normalisation after each convolution and the dense layer."""
    bn_momentum: params.number(0, 1, exclusive="max")
    """Momentum of batch norm's moving statistics (0.99: about the last 100 batches; lower
    follows the weights faster, which a weight average needs)."""
    conv_dropout: _DROPOUT
    """Dropout after each conv block."""
    dense_units: params.integer(1)
    """Units of the dense layer before the logits."""
    dense_dropout: _DROPOUT

    @model_validator(mode="after")
    def _one_count_per_block(self) -> CNNParams:
        convs = self.convs_per_block
        if isinstance(convs, list) and len(convs) != len(self.filters):
            raise ValueError(
                f"convs_per_block = {convs} has {len(convs)} entries but filters = {self.filters} has "
                f"{len(self.filters)} blocks; expected one entry per block, or a single integer"
            )
        return self


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
