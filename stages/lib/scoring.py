"""Classification scores shared by evaluate and report (NumPy only, no model needed)."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from stages.lib.idx import CLASS_NAMES
from stages.lib.stats import wilson


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, n_classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """Counts with actual classes as rows and predicted classes as columns."""
    actual, predicted = np.asarray(actual, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(actual * n_classes + predicted, minlength=n_classes**2).reshape(n_classes, n_classes)


def score(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Accuracy with its Wilson 95% interval, cross-entropy loss, macro F1 and per-class
    precision/recall/F1."""
    predicted = probs.argmax(axis=1)
    low, high = wilson(int((predicted == labels).sum()), int(labels.size))
    cm = confusion_matrix(labels, predicted)
    true_pos = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(true_pos / cm.sum(axis=0))
        recall = np.nan_to_num(true_pos / cm.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    picked = probs[np.arange(labels.size), labels].astype(np.float64)
    loss = float(-np.mean(np.log(np.maximum(picked, np.finfo(np.float32).tiny))))
    return {
        "accuracy": round(float((predicted == labels).mean()), 6),
        # Two numbers rather than a list, so that `dvc metrics diff` shows how each moved.
        "accuracy_ci_low": round(low, 6),
        "accuracy_ci_high": round(high, 6),
        "loss": round(loss, 6),
        "macro_f1": round(float(f1.mean()), 6),
        "per_class": {
            name: {"precision": round(float(p), 6), "recall": round(float(r), 6), "f1": round(float(f), 6)}
            for name, p, r, f in zip(CLASS_NAMES, precision, recall, f1, strict=True)
        },
    }


def most_confused(cm: np.ndarray, top: int) -> list[tuple[str, str, int]]:
    """The `top` largest off-diagonal cells as (actual, predicted, count), largest first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    cells = [np.unravel_index(i, off.shape) for i in order]
    return [(CLASS_NAMES[a], CLASS_NAMES[p], int(off[a, p])) for a, p in cells if off[a, p] > 0]


def confusion_csv(labels: np.ndarray, predicted: np.ndarray) -> str:
    """One row per test image, for DVC's `confusion` template."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["actual", "predicted"])
    writer.writerows((CLASS_NAMES[a], CLASS_NAMES[p]) for a, p in zip(labels, predicted, strict=True))
    return out.getvalue()
