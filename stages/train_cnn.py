"""train-cnn: the convolutional network, trained on the train split, early-stopped on validation."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import model_validator

from stages.lib import params
from stages.lib.layers import add_input, logits
from stages.lib.stage import run_main
from stages.lib.tf_runtime import keras
from stages.lib.training import TrainParams, train_stage

layers = keras.layers
_DROPOUT = params.number(0, 1, exclusive="max")


class CNNParams(TrainParams):
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
    """Conv blocks (conv [-> BN] -> relu, pooled, dropout) -> Dense -> Dropout -> Dense(10) logits:
    the stacked-convolution design of "Implementing a CNN for Fashion-MNIST with TensorFlow", with
    batch normalisation."""
    model = keras.Sequential(name="cnn")
    add_input(model)
    convs = p["convs_per_block"]
    for block, filters in enumerate(p["filters"]):
        for _ in range(convs[block] if isinstance(convs, list) else convs):
            # With batch-norm the conv bias is redundant: BN's beta does that job.
            model.add(layers.Conv2D(filters, p["kernel_size"], padding="same", use_bias=not p["batch_norm"]))
            if p["batch_norm"]:
                model.add(layers.BatchNormalization())
            model.add(layers.Activation("relu"))
        model.add(layers.MaxPooling2D())
        if p["conv_dropout"]:
            model.add(layers.Dropout(p["conv_dropout"]))
    model.add(layers.Flatten())
    model.add(layers.Dense(p["dense_units"], use_bias=not p["batch_norm"]))
    if p["batch_norm"]:
        model.add(layers.BatchNormalization())
    model.add(layers.Activation("relu"))
    if p["dense_dropout"]:
        model.add(layers.Dropout(p["dense_dropout"]))
    model.add(logits())
    return model


if __name__ == "__main__":
    run_main(train_stage, "cnn", build_cnn, CNNParams)
