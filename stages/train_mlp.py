"""train-mlp: the multilayer perceptron, trained on the train split, early-stopped on validation."""

from __future__ import annotations

from typing import Any

from stages.lib.layers import add_input, logits
from stages.lib.sections.train_mlp import MLPParams
from stages.lib.stage import run_main
from stages.lib.tf_runtime import keras
from stages.lib.training import train_stage


def build_mlp(p: dict[str, Any]) -> keras.Model:
    """Flatten -> [Dense(relu) -> Dropout] per hidden layer -> Dense(10) logits: the network of the
    Keras basic-classification tutorial (Flatten-Dense128-Dense10), wider and deeper as params say."""
    model = keras.Sequential(name="mlp")
    add_input(model)
    model.add(keras.layers.Flatten())
    for units in p["hidden_units"]:
        model.add(keras.layers.Dense(units, activation="relu"))
        if p["dropout"]:
            model.add(keras.layers.Dropout(p["dropout"]))
    model.add(logits())
    return model


if __name__ == "__main__":
    run_main(train_stage, "mlp", build_mlp, MLPParams)
