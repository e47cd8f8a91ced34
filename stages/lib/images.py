"""uint8 images to model inputs, the same way for training, evaluation and predict."""

from __future__ import annotations

import numpy as np


def apply_normalization(images: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    """[0, 1], less the training mean, over the training std (0 and 1 for `scale`): the inputs
    preprocess made of the training data, and predict makes of a user's image."""
    return (images.astype(np.float32) / 255.0 - np.float32(stats["mean"])) / np.float32(stats["std"])


# Test-time augmentation: the views of each test image whose logits are averaged. A model trained
# with flips has seen both sides of every garment, and one trained with shifts 1-pixel moves.
TTA = ("none", "flip", "flip_shift")


def tta_views(images: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of (n, 28, 28) `images` for `mode`: none (the images), flip (and their mirror
    images), flip_shift (both, each also moved 1 pixel up-left and down-right, the edge repeated:
    six views, as airbench's test-time augmentation)."""
    if mode not in TTA:
        raise ValueError(f"test-time augmentation {mode!r} is not one of {', '.join(TTA)}")
    views = [images] if mode == "none" else [images, images[:, :, ::-1]]
    if mode == "flip_shift":
        padded = [np.pad(view, ((0, 0), (1, 1), (1, 1)), mode="edge") for view in views]
        views += [p[:, 2:, 2:] for p in padded] + [p[:, :-2, :-2] for p in padded]
    return [np.ascontiguousarray(view) for view in views]
