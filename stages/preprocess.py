"""preprocess: decode IDX, split a stratified validation set off the training images, normalise."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from stages.lib import params, paths
from stages.lib.files import save_arrays, write_json
from stages.lib.idx import CLASS_NAMES, FASHION_MNIST, IdxError, decode
from stages.lib.images import apply_normalization
from stages.lib.sections.preprocess import PreprocessParams
from stages.lib.stage import StageError, run_main

log = logging.getLogger("stages.preprocess")


def stratified_sample(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` items whose class proportions match `labels` (largest remainder), sorted."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / labels.size
    take = np.floor(quota).astype(int)
    shortfall = n - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:shortfall]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def split(
    images: np.ndarray, labels: np.ndarray, *, val_size: int | float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split into (train, validation), stratified by class; `val_size` is a count or a fraction."""
    n_val = round(val_size * labels.size) if isinstance(val_size, float) else val_size
    if not 1 <= n_val < labels.size:
        raise StageError(
            f"preprocess.val_size = {val_size!r} gives {n_val} validation images out of {labels.size} "
            "training images; it must leave at least one on each side"
        )
    val = stratified_sample(labels, n_val, np.random.default_rng(seed))
    is_val = np.zeros(labels.size, bool)
    is_val[val] = True
    return (images[~is_val], labels[~is_val]), (images[is_val], labels[is_val])


def normalize(
    train: np.ndarray, others: list[np.ndarray], method: str
) -> tuple[np.ndarray, list[np.ndarray], dict[str, float]]:
    """Scale uint8 images to [0, 1], then for `standardize` centre and scale by the train split's
    mean and std only, so nothing about validation or test leaks into the inputs."""
    mean, std = 0.0, 1.0
    if method == "standardize":
        scaled = train.astype(np.float32) / 255.0
        mean, std = float(scaled.mean(dtype=np.float64)), float(scaled.std(dtype=np.float64))
    stats = {"mean": mean, "std": std}
    return apply_normalization(train, stats), [apply_normalization(x, stats) for x in others], stats


def _limit(images: np.ndarray, labels: np.ndarray, limit: int | None, seed: int, what: str):
    if limit is None or limit >= labels.size:
        return images, labels
    idx = stratified_sample(labels, limit, np.random.default_rng(seed))
    log.info("%s: using a stratified subset of %d of %d images", what, limit, labels.size)
    return images[idx], labels[idx]


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    return {name: int(c) for name, c in zip(CLASS_NAMES, counts, strict=True)}


def _read_raw(name: str) -> np.ndarray:
    path = paths.RAW / name
    try:
        return decode(path.read_bytes())
    except FileNotFoundError:
        raise StageError(f"{path} is missing: run `dvc repro fetch`") from None
    except IdxError as exc:
        raise StageError(f"{path}: {exc}; rebuild it with `dvc repro -f fetch`") from None


def preprocess(p: dict[str, Any], raw: dict[str, np.ndarray]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """The three splits as (float32 images, uint8 labels), and their statistics."""
    for kind in ("train", "t10k"):
        n_img, n_lab = len(raw[f"{kind}-images"]), len(raw[f"{kind}-labels"])
        if n_img != n_lab:
            raise StageError(f"{kind}: {n_img} images but {n_lab} labels")
    seed = p["seed"]
    x, y = _limit(raw["train-images"], raw["train-labels"], p["train_limit"], seed, "train")
    x_test, y_test = _limit(raw["t10k-images"], raw["t10k-labels"], p["test_limit"], seed + 1, "test")
    (x_train, y_train), (x_val, y_val) = split(x, y, val_size=p["val_size"], seed=seed)
    x_train, (x_val, x_test), norm = normalize(x_train, [x_val, x_test], p["normalize"])
    splits = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    stats = {
        "normalize": p["normalize"],
        **norm,
        "splits": {name: {"count": int(len(y_)), "classes": _class_counts(y_)} for name, (_, y_) in splits.items()},
    }
    return splits, stats


def main() -> None:
    p = params.load("preprocess", PreprocessParams)
    raw = {spec.name.rsplit("-", 2)[0]: _read_raw(spec.name) for spec in FASHION_MNIST}
    splits, stats = preprocess(p, raw)
    for name, path in (("train", paths.TRAIN), ("val", paths.VAL), ("test", paths.TEST)):
        x, y = splits[name]
        save_arrays(path, x=x, y=y)
        log.info("%s: %d images -> %s", name, len(y), path.relative_to(paths.ROOT))
    write_json(paths.STATS, stats)


if __name__ == "__main__":
    run_main(main)
