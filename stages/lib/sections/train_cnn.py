"""train_cnn's section of params.yaml."""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from stages.lib import params
from stages.lib.sections.training import TrainParams

_DROPOUT = params.number(0, 1, exclusive="max")


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
