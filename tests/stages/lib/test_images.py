"""Test-time augmentation's views of the test images."""

import numpy as np
import pytest

from stages.lib.images import tta_views


def test_the_views_of_each_mode():
    images = np.random.default_rng(0).normal(size=(3, 28, 28)).astype(np.float32)
    (plain,) = tta_views(images, "none")
    np.testing.assert_array_equal(plain, images)
    same, mirrored = tta_views(images, "flip")
    np.testing.assert_array_equal(mirrored, images[:, :, ::-1])
    views = tta_views(images, "flip_shift")
    assert len(views) == 6
    up_left = views[2]
    np.testing.assert_array_equal(up_left[:, :-1, :-1], images[:, 1:, 1:])  # moved one pixel up and left
    np.testing.assert_array_equal(up_left[:, -1, :], up_left[:, -2, :])  # the edge repeated
    down_right = views[4]
    np.testing.assert_array_equal(down_right[:, 1:, 1:], images[:, :-1, :-1])
    with pytest.raises(ValueError, match="'rotate' is not one of none, flip, flip_shift"):
        tta_views(images, "rotate")
