"""evaluate's section of params.yaml."""

from __future__ import annotations

from stages.lib import params
from stages.lib.images import TTA


class EvaluateParams(params.Section):
    batch_size: params.integer(1, 65536)
    """Test images per forward pass."""
    tta_mlp: params.choice(*TTA)
    """The MLP's test-time augmentation: none, flip (the image and its mirror image, logits
    averaged) or flip_shift (both, each also moved 1 pixel two ways: six views)."""
    tta_cnn: params.choice(*TTA)
    """The CNN's test-time augmentation, as tta_mlp."""
