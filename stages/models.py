"""Keras model builders for train-mlp and train-cnn; both output logits for 10 classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import model_validator

from stages import params
from stages.tf_runtime import keras

layers = keras.layers

N_CLASSES = 10
INPUT_SHAPE = (28, 28)

_DROPOUT = params.number(0, 1, exclusive="max")


class TrainParams(params.Section):
    """What train-mlp and train-cnn share: the optimiser, the schedule and the augmentation."""

    epochs: params.integer(1)
    """Passes over the training split at most."""
    batch_size: params.integer(1, 65536)
    learning_rate: params.number(0, 1, exclusive="min")
    """Adam's (or AdamW's) learning rate; the peak of the cosine schedule."""
    seed: params.integer(0)
    """Seeds the weights, the shuffling and the augmentation: same params, same model."""
    patience: params.integer(1)
    """Epochs without a better val_accuracy before stopping (the best epoch is kept)."""
    lr_schedule: params.choice("constant", "cosine")
    """constant, or cosine: decays to 0 over `epochs`."""
    augment_flip: params.boolean()
    """Random left-right flips while training."""
    augment_shift: params.number(0, 0.5, exclusive="max")
    """Random shifts while training, as a fraction of the 28 px."""
    steps_per_execution: params.integer(1, 1024)
    """Training steps per call into TensorFlow: fewer Python round trips for small models."""
    label_smoothing: params.number(0, 1, exclusive="max")
    """e: train towards 1 - e + e/10 for the true class and e/10 for the others."""
    weight_decay: params.number(0, 1, exclusive="max")
    """AdamW's decoupled weight decay; 0 = plain Adam."""
    precision: params.choice("float32", "mixed_bfloat16")
    """mixed_bfloat16: layers compute in bfloat16 and keep float32 weights; faster only on CPUs
    with bfloat16 instructions (avx512_bf16, AMX), emulated (slower) elsewhere."""


class MLPParams(TrainParams):
    hidden_units: params.list_of(params.integer(1), what="positive integers", min_length=0)
    """Units of each hidden layer; [] = no hidden layer, a linear (softmax regression) baseline."""
    dropout: _DROPOUT
    """Dropout after each hidden layer."""


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


def _input_and_augmentation(model: keras.Sequential, p: dict[str, Any]) -> None:
    """28x28 input as one channel, then the random augmentations, which act only in training.

    Shifted-in pixels repeat the edge, which is background whatever the normalisation. The
    augmentations work in float32 whatever the precision: they are cheap, and image
    transforms are not all implemented for bfloat16.
    """
    model.add(keras.Input(INPUT_SHAPE))
    model.add(layers.Reshape((*INPUT_SHAPE, 1)))
    if p["augment_flip"]:
        model.add(layers.RandomFlip("horizontal", seed=p["seed"], dtype="float32"))
    if p["augment_shift"]:
        shift = p["augment_shift"]
        model.add(layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=p["seed"] + 1, dtype="float32"))


def _logits() -> layers.Dense:
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


def build_mlp(p: dict[str, Any]) -> keras.Model:
    """Flatten -> [Dense(relu) -> Dropout] per hidden layer -> Dense(10) logits (seeds 001/003)."""
    model = keras.Sequential(name="mlp")
    _input_and_augmentation(model, p)
    model.add(layers.Flatten())
    for units in p["hidden_units"]:
        model.add(layers.Dense(units, activation="relu"))
        if p["dropout"]:
            model.add(layers.Dropout(p["dropout"]))
    model.add(_logits())
    return model


def build_cnn(p: dict[str, Any]) -> keras.Model:
    """Conv blocks (conv [-> BN] -> relu, pooled, dropout) -> Dense -> Dropout -> Dense(10) (seed 002)."""
    model = keras.Sequential(name="cnn")
    _input_and_augmentation(model, p)
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
    model.add(_logits())
    return model
