"""Tiny params and data for the training tests: a few seconds per model, learnable classes."""

from __future__ import annotations

from functools import cache

from stages.lib.training import train
from stages.preprocess import normalize
from stages.train_cnn import whiten_patches
from tests.conftest import synthetic_split

COMMON = {
    "epochs": 2,
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "seed": 7,
    "patience": 3,
    "lr_schedule": "constant",
    "warmup": 0.0,
    "augment_flip": "none",
    "augment_translate": 0,
    "ema": 0.0,
    "steps_per_execution": 4,  # 10 steps an epoch: two full calls and a partial one
    "label_smoothing": 0.0,
    "weight_decay": 0.0,
    "precision": "float32",
}


MLP = {**COMMON, "hidden_units": [32], "dropout": 0.1}


CNN = {**COMMON, "stem": "none", "filters": [4, 8], "convs_per_block": 1, "kernel_size": 3, "batch_norm": True,
       "bn_momentum": 0.99, "conv_dropout": 0.1, "dense_units": 16, "dense_dropout": 0.2}  # fmt: skip


@cache
def tiny_splits():
    """(train, validation) of synthetic 28x28 images, 300 and 100, scaled to [0, 1]."""
    x_train, y_train = synthetic_split(300, seed=1)
    x_val, y_val = synthetic_split(100, seed=2)
    x_train, (x_val,), _ = normalize(x_train, [x_val], "scale")
    return (x_train, y_train), (x_val, y_val)


def train_once(build, p, checkpoint=None, live=None):
    return train(build, *tiny_splits(), p, checkpoint=checkpoint, live=live, adapt=whiten_patches)
