import numpy as np
import pytest

from stages.lib.stage import StageError
from stages.preprocess import normalize, preprocess, split, stratified_sample
from tests.conftest import synthetic_split


def test_stratified_sample_keeps_class_proportions():
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    idx = stratified_sample(labels, 10, np.random.default_rng(0))
    assert len(idx) == len(set(idx)) == 10
    assert np.bincount(labels[idx]).tolist() == [4, 3, 2, 1]


def test_split_is_disjoint_stratified_and_seeded():
    _, labels = synthetic_split(200, seed=0)
    ids = np.arange(200)  # stand-ins for images, so membership is easy to check
    (x_tr, y_tr), (x_val, y_val) = split(ids, labels, val_size=50, seed=3)
    assert len(x_val) == 50 and len(x_tr) == 150
    assert not set(x_tr) & set(x_val)
    assert np.bincount(y_val).tolist() == [5] * 10
    again = split(ids, labels, val_size=50, seed=3)[1][0]
    other = split(ids, labels, val_size=50, seed=4)[1][0]
    assert np.array_equal(again, x_val) and not np.array_equal(other, x_val)


def test_split_accepts_a_fraction_and_rejects_a_too_large_count():
    images, labels = synthetic_split(100, seed=0)
    assert len(split(images, labels, val_size=0.2, seed=0)[1][1]) == 20
    with pytest.raises(StageError, match="val_size = 100 gives 100 validation images out of 100"):
        split(images, labels, val_size=100, seed=0)


def test_standardize_uses_the_training_split_only():
    train = np.full((4, 28, 28), 51, np.uint8)
    train[:2] = 153
    test = np.full((2, 28, 28), 255, np.uint8)
    x_train, (x_test,), stats = normalize(train, [test], "standardize")
    assert stats["mean"] == pytest.approx(0.4) and stats["std"] == pytest.approx(0.2)
    assert x_train.mean() == pytest.approx(0.0, abs=1e-6) and x_train.std() == pytest.approx(1.0, abs=1e-6)
    assert x_test.max() == pytest.approx(3.0, abs=1e-5)  # (1.0 - 0.4) / 0.2: no test statistics used
    assert x_train.dtype == np.float32


def test_scale_maps_to_unit_interval():
    x, (y,), stats = normalize(np.array([[[0, 255]]], np.uint8), [np.array([[[51]]], np.uint8)], "scale")
    assert x.tolist() == [[[0.0, 1.0]]] and y.tolist() == [[[pytest.approx(0.2)]]]
    assert stats == {"mean": 0.0, "std": 1.0}


def test_preprocess_limits_splits_and_counts(tiny_idx):
    raw = {name.rsplit("-", 2)[0]: array for name, array in tiny_idx.arrays.items()}
    p = {"normalize": "scale", "val_size": 40, "train_limit": 150, "test_limit": 20, "seed": 0}
    splits, stats = preprocess(p, raw)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 110, "val": 40, "test": 20}
    assert stats["splits"]["val"]["count"] == 40
    assert sum(stats["splits"]["test"]["classes"].values()) == 20
    assert all(v == 4 for v in stats["splits"]["val"]["classes"].values())


def test_preprocess_rejects_images_without_matching_labels(tiny_idx):
    raw = {name.rsplit("-", 2)[0]: array for name, array in tiny_idx.arrays.items()}
    raw["train-labels"] = raw["train-labels"][:-1]
    p = {"normalize": "scale", "val_size": 40, "train_limit": None, "test_limit": None, "seed": 0}
    with pytest.raises(StageError, match="train: 200 images but 199 labels"):
        preprocess(p, raw)
