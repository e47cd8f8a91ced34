"""The figures README.md and docs/ quote from the committed run agree with its committed metrics, to
the precision they show. Only the places listed below are checked: the docs' other percentages are
measurements of other runs and commits, each saying which."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from tests.helpers import PROJECT


@cache
def _committed(path: str) -> Any:
    return json.loads((PROJECT / path).read_text())


def _test_accuracy(model: str) -> float:
    return _committed("metrics/evaluate.json")[model]["accuracy"]


# Each figure the docs quote, in percent (or percentage points), from the committed metrics.
FIGURES: dict[str, Callable[[], float]] = {
    "MLP test accuracy": lambda: 100 * _test_accuracy("mlp"),
    "CNN test accuracy": lambda: 100 * _test_accuracy("cnn"),
    "CNN - MLP test accuracy": lambda: 100 * (_test_accuracy("cnn") - _test_accuracy("mlp")),
}

DEFAULTS_SENTENCE = r"With the default params the MLP reaches ([\d.]+)% and the CNN ([\d.]+)% test accuracy"

# (file, pattern, the figure each of its groups captures): every place that quotes the committed run.
QUOTES = [
    ("README.md", DEFAULTS_SENTENCE, ("MLP test accuracy", "CNN test accuracy")),
    ("docs/pipeline.md", DEFAULTS_SENTENCE, ("MLP test accuracy", "CNN test accuracy")),
    ("docs/pipeline.md", r"^\| default MLP \(.*\) \| ([\d.]+)% \|", ("MLP test accuracy",)),
    ("docs/pipeline.md", r"^\| default CNN \(.*\) \| ([\d.]+)% \|", ("CNN test accuracy",)),
    ("docs/pipeline.md", r"convolutions another ([\d.]+) points", ("CNN - MLP test accuracy",)),
]


def agrees(shown: str, value: float) -> bool:
    """Whether `value` rounds to `shown` (ties either way: 90.25 may be shown as 90.2 or 90.3)."""
    decimals = len(shown.partition(".")[2])
    return abs(float(shown) - value) <= 0.5 * 10**-decimals + 1e-9


@pytest.mark.parametrize(("file", "pattern", "figures"), QUOTES, ids=[f"{f}:{'+'.join(g)}" for f, _, g in QUOTES])
def test_the_docs_quote_the_committed_metrics(file, pattern, figures):
    found = re.findall(pattern, (PROJECT / file).read_text(), re.M)
    assert len(found) == 1, f"{file}: {len(found)} places match {pattern!r}, not one: update QUOTES with the docs"
    shown = found[0] if isinstance(found[0], tuple) else (found[0],)
    for text, name in zip(shown, figures, strict=True):
        value = FIGURES[name]()
        assert agrees(text, value), f"{file} says {name} {text}, the committed metrics {value:.2f}"


def test_a_figure_agrees_only_to_the_precision_it_shows():
    assert agrees("90.3", 90.28) and agrees("90.2", 90.25) and agrees("90.3", 90.25) and agrees("90", 90.28)
    assert not agrees("89.8", 90.28) and not agrees("90.28", 90.3) and not agrees("90.2", 90.26)
