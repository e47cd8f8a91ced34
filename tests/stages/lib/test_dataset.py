"""The training pipeline: seeded shuffles, flips (random and alternating) and translations per image;
a fit on it writes no TensorFlow C++ line."""

import subprocess
import sys

import numpy as np
import pytest

from stages.lib.dataset import TrainingInput, make_dataset
from tests.helpers import PROJECT, tf_cpp_lines


def _images(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Images that tell their own index and orientation: image i holds i in its left column only."""
    x = np.zeros((n, 28, 28), np.float32)
    x[:, :, 0] = np.arange(n, dtype=np.float32)[:, None] + 1
    return x, np.arange(n) % 10


def _epochs(x, y, epochs, **kwargs) -> list[np.ndarray]:
    """The images of each epoch, as model.fit would see them."""
    pipeline = TrainingInput(x, y, batch_size=16, **kwargs)
    seen = []
    for epoch in epochs:
        pipeline.on_epoch_begin(epoch)
        seen.append(np.concatenate([batch[0].numpy() for batch in pipeline.dataset]))
    return seen


def _index_and_flipped(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which image each one is, and whether it is mirrored (its marked column on the right)."""
    flipped = images[:, :, -1].max(axis=1) > 0
    column = np.where(flipped[:, None], images[:, :, -1], images[:, :, 0])
    return column.max(axis=1).astype(int) - 1, flipped


def test_each_epoch_is_a_seeded_shuffle_of_every_image_once():
    x, y = _images()
    first = _epochs(x, y, range(3), seed=3)
    again = _epochs(x, y, range(3), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    orders = [_index_and_flipped(epoch)[0] for epoch in first]
    assert all(sorted(order) == list(range(40)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled
    resumed = _epochs(x, y, range(2, 3), seed=3)
    assert np.array_equal(resumed[0], first[2])  # a resumed run sees the epoch it would have seen


def test_alternating_flips_show_every_image_both_ways_in_two_epochs():
    x, y = _images()
    epochs = _epochs(x, y, range(4), seed=1, flip="alternate")
    flipped = []
    for epoch in epochs:
        index, mirrored = _index_and_flipped(epoch)
        flipped.append(mirrored[np.argsort(index)])
    assert 10 < flipped[0].sum() < 30  # about half
    assert np.array_equal(flipped[0], ~flipped[1]) and np.array_equal(flipped[0], flipped[2])
    assert np.array_equal(flipped[1], flipped[3])


def test_random_flips_draw_anew_every_epoch():
    x, y = _images(200)
    epochs = _epochs(x, y, range(2), seed=1, flip="random")
    first, second = (_index_and_flipped(e)[1][np.argsort(_index_and_flipped(e)[0])] for e in epochs)
    assert 70 < first.sum() < 130 and 70 < second.sum() < 130
    assert 60 < (first == second).sum() < 140  # independent, not alternating


@pytest.mark.parametrize("pixels", [1, 2])
def test_translations_move_images_by_whole_pixels_repeating_the_edge(pixels):
    x = np.random.default_rng(0).normal(size=(30, 28, 28)).astype(np.float32)
    (batch,) = _epochs(x, np.zeros(30, int), range(1), seed=0, translate=pixels)
    moves = set()
    for image in batch:
        found = [
            (dy, dx)
            for dy in range(-pixels, pixels + 1)
            for dx in range(-pixels, pixels + 1)
            for original in x
            if np.array_equal(image[max(0, dy) : 28 + min(0, dy), max(0, dx) : 28 + min(0, dx)],
                              original[max(0, -dy) : 28 + min(0, -dy), max(0, -dx) : 28 + min(0, -dx)])
        ]  # fmt: skip
        assert found, "not a whole-pixel shift of any original image"
        moves.add(found[0])
    assert len(moves) > 3


def test_validation_batches_keep_the_order():
    x, y = _images()
    images = np.concatenate([b[0].numpy() for b in make_dataset(x, y, batch_size=16)])
    np.testing.assert_array_equal(images, x)


TRAINS_AS_A_STAGE_DOES = """
from stages.train_cnn import build_cnn
from tests.stages.tiny import CNN, train_once
train_once(build_cnn, {**CNN, "epochs": 1, "augment_flip": "alternate", "augment_translate": 2})
print("trained")
"""


@pytest.mark.slow  # a process of its own, starting TensorFlow
def test_training_on_the_pipeline_writes_no_tensorflow_cpp_line():
    """The training loop as the stages run it, op determinism on: tf.data's rewrite of a parallel map
    for determinism wrote a spurious error line on every fit (TensorFlow 2.21)."""
    proc = subprocess.run([sys.executable, "-c", TRAINS_AS_A_STAGE_DOES], cwd=PROJECT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert proc.stdout == "trained\n"
    assert tf_cpp_lines(proc.stderr) == [], proc.stderr
