"""train_mlp's section of params.yaml."""

from __future__ import annotations

from stages.lib import params
from stages.lib.sections.training import TrainParams


class MLPParams(TrainParams):
    hidden_units: params.list_of(params.integer(1), what="positive integers", min_length=0)
    """Units of each hidden layer; [] = no hidden layer, a linear (softmax regression) baseline."""
    dropout: params.number(0, 1, exclusive="max")
    """Dropout after each hidden layer."""
