"""Is a difference real? Intervals and tests for accuracies measured on one test set (scipy.stats).

- One accuracy: its Wilson score interval (scipy's `binomtest(...).proportion_ci(method="wilson")`).
- Two classifiers on the same images: McNemar's test on the images where exactly one is right,
  in its mid-p form, which keeps its level better than the exact test is conservative
  (Fagerland, Lydersen & Laake 2013); and Newcombe's interval for the paired difference
  (his method 10, 1998: the two Wilson intervals combined through the pairs' correlation).
- Many such tests at once (one per class): Holm's step-down adjustment.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binom, binomtest

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


def wilson(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion `correct` / `total`."""
    if total == 0:
        return (0.0, 1.0)
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_midp(fixed: int, broken: int) -> float:
    """McNemar's mid-p value for `fixed` images only the second classifier gets right and `broken`
    ones only the first gets right: twice the binomial(n, 1/2) tail below the smaller count,
    less that count's own probability."""
    n, low = fixed + broken, min(fixed, broken)
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(low, n, 0.5) - binom.pmf(low, n, 0.5)))


def paired_difference_ci(
    both: int, only_a: int, only_b: int, neither: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's interval (method 10) for accuracy(B) - accuracy(A) on the same images, from the
    counts of images both, only A, only B and neither got right."""
    n = both + only_a + only_b + neither
    if n == 0:
        return (-1.0, 1.0)
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    low_b, high_b = wilson(both + only_b, n, confidence)
    low_a, high_a = wilson(both + only_a, n, confidence)
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    phi = (both * neither - only_a * only_b) / math.sqrt(margins) if margins else 0.0
    below = math.sqrt(max(0.0, (p_b - low_b) ** 2 - 2 * phi * (p_b - low_b) * (high_a - p_a) + (high_a - p_a) ** 2))
    above = math.sqrt(max(0.0, (high_b - p_b) ** 2 - 2 * phi * (high_b - p_b) * (p_a - low_a) + (p_a - low_a) ** 2))
    difference = p_b - p_a
    return (max(-1.0, difference - below), min(1.0, difference + above))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest is multiplied by
    (m - k + 1), and none is below an adjusted value ranked before it."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(np.argsort(p_values, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """Two classifiers A and B scored on the same n images."""

    n: int
    accuracy_a: float
    accuracy_b: float
    ci_a: tuple[float, float]
    ci_b: tuple[float, float]
    difference: float  # accuracy_b - accuracy_a
    difference_ci: tuple[float, float]
    p_value: float  # McNemar's mid-p
    fixed: int  # images B gets right and A wrong
    broken: int  # images A gets right and B wrong

    def better(self, alpha: float = ALPHA) -> str | None:
        """'a' or 'b' when the difference is significant at `alpha`, else None."""
        if self.p_value >= alpha or self.difference == 0:
            return None
        return "b" if self.difference > 0 else "a"

    def verdict(self, a: str = "A", b: str = "B", alpha: float = ALPHA) -> str:
        """`B is better`, `A is better` or `no detectable difference` (McNemar at `alpha`)."""
        better = self.better(alpha)
        return "no detectable difference" if better is None else f"{b if better == 'b' else a} is better"

    def summary(self) -> str:
        """The difference in points with its interval and the p-value: `+0.41 points [+0.12, +0.70], p = 0.006`."""
        low, high = self.difference_ci
        return f"{points(self.difference)} points [{points(low)}, {points(high)}], {p_text(self.p_value)}"

    def as_dict(self, a: str = "A", b: str = "B") -> dict[str, Any]:
        fields = {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}
        return {**fields, "verdict": self.verdict(a, b)}


def points(fraction: float) -> str:
    """A difference of accuracies in percentage points, signed: +0.41."""
    return f"{100 * fraction:+.2f}"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def interval(ci: tuple[float, float]) -> str:
    """[93.34, 94.29]: an accuracy's interval in percent."""
    return f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def compare(right_a: np.ndarray, right_b: np.ndarray) -> Comparison:
    """Compare two classifiers from whether each got each image right (boolean arrays, one entry
    per image, the same images in the same order)."""
    right_a, right_b = np.asarray(right_a, bool), np.asarray(right_b, bool)
    if right_a.shape != right_b.shape:
        raise ValueError(f"the two classifiers were scored on {right_a.size} and {right_b.size} images")
    n = int(right_a.size)
    both = int(np.sum(right_a & right_b))
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    neither = n - both - only_a - only_b
    correct_a, correct_b = both + only_a, both + only_b
    return Comparison(
        n=n,
        accuracy_a=correct_a / n if n else 0.0,
        accuracy_b=correct_b / n if n else 0.0,
        ci_a=wilson(correct_a, n),
        ci_b=wilson(correct_b, n),
        difference=(only_b - only_a) / n if n else 0.0,
        difference_ci=paired_difference_ci(both, only_a, only_b, neither),
        p_value=mcnemar_midp(only_b, only_a),
        fixed=only_b,
        broken=only_a,
    )
