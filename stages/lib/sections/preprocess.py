"""preprocess's section of params.yaml."""

from __future__ import annotations

from typing import Annotated

from stages.lib import params


class PreprocessParams(params.Section):
    normalize: params.choice("scale", "standardize")
    """scale: [0, 1]; standardize: mean/std of the training split."""
    val_size: Annotated[
        params.integer(1) | params.number(0, 1, exclusive="both"),
        params.Allowed("an integer >= 1 (images) or a number > 0 and < 1 (a fraction of the training images)"),
    ]
    """Images held out of the 60,000 for early stopping and tuning: a count, or a fraction."""
    train_limit: params.integer(10, nullable=True)
    """null = all; an integer = a seeded, class-stratified subset."""
    test_limit: params.integer(10, nullable=True)
    """null = all; an integer = a seeded, class-stratified subset."""
    seed: params.integer(0)
    """Seeds the validation split and the subsets."""
