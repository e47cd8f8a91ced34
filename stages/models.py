"""Keras model builders for train-mlp and train-cnn; both output logits for 10 classes."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from stages import params

N_CLASSES = 10
INPUT_SHAPE = (28, 28)

_COMMON = {
    "epochs": params.integer(1),
    "batch_size": params.integer(1, 65536),
    "learning_rate": params.number(0, 1, exclusive="min"),
    "seed": params.integer(0),
    "patience": params.integer(1),  # epochs without a better val_accuracy before stopping
    "lr_schedule": params.choice("constant", "cosine"),  # cosine: decays to 0 over `epochs`
    "augment_flip": params.boolean(),  # random left-right flips while training
    "augment_shift": params.number(0, 0.5, exclusive="max"),  # random shifts, as a fraction of 28 px
    # Training steps per call into TensorFlow: fewer Python round trips for small models.
    "steps_per_execution": params.integer(1, 1024),
}
_DROPOUT = params.number(0, 1, exclusive="max")

MLP_SCHEMA = {
    **_COMMON,
    "hidden_units": params.list_of(params.integer(1), what="positive integers"),
    "dropout": _DROPOUT,
}

CNN_SCHEMA = {
    **_COMMON,
    "filters": params.list_of(
        # Each block halves the 28x28 input by pooling: four blocks leave 1x1.
        params.integer(1),
        what="positive integers (one conv block each)",
        max_length=4,
    ),
    "convs_per_block": params.integer(1, 4),
    "kernel_size": params.integer(1, 7),
    "batch_norm": params.boolean(),
    "conv_dropout": _DROPOUT,
    "dense_units": params.integer(1),
    "dense_dropout": _DROPOUT,
}


def _input_and_augmentation(model: keras.Sequential, p: dict[str, Any]) -> None:
    """28x28 input as one channel, then the random augmentations, which act only in training.

    Shifted-in pixels repeat the edge, which is background whatever the normalisation.
    """
    model.add(keras.Input(INPUT_SHAPE))
    model.add(layers.Reshape((*INPUT_SHAPE, 1)))
    if p["augment_flip"]:
        model.add(layers.RandomFlip("horizontal", seed=p["seed"]))
    if p["augment_shift"]:
        shift = p["augment_shift"]
        model.add(layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=p["seed"] + 1))


def build_mlp(p: dict[str, Any]) -> keras.Model:
    """Flatten -> [Dense(relu) -> Dropout] per hidden layer -> Dense(10) logits (seeds 001/003)."""
    model = keras.Sequential(name="mlp")
    _input_and_augmentation(model, p)
    model.add(layers.Flatten())
    for units in p["hidden_units"]:
        model.add(layers.Dense(units, activation="relu"))
        if p["dropout"]:
            model.add(layers.Dropout(p["dropout"]))
    model.add(layers.Dense(N_CLASSES, name="logits"))
    return model


def build_cnn(p: dict[str, Any]) -> keras.Model:
    """Conv blocks (conv [-> BN] -> relu, pooled, dropout) -> Dense -> Dropout -> Dense(10) (seed 002)."""
    model = keras.Sequential(name="cnn")
    _input_and_augmentation(model, p)
    for filters in p["filters"]:
        for _ in range(p["convs_per_block"]):
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
    model.add(layers.Dense(N_CLASSES, name="logits"))
    return model
