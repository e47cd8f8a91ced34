"""A comparison rendered: each verdict bold in Markdown, the model table parseable."""

from __future__ import annotations

import numpy as np

from flows.compare.render import render_markdown
from flows.compare.result import Result, Revision
from stages.lib import stats


def test_markdown_is_rendered_from_the_same_result_as_json():
    """The Markdown of a hand-made result: each verdict bold, the model table parseable."""
    labels = np.arange(200) % 10
    right = labels == labels
    answers = {"a": {n: labels.copy() for n in ("mlp", "cnn")}, "b": {n: labels.copy() for n in ("mlp", "cnn")}}
    answers["b"]["cnn"][:30] = (labels[:30] + 1) % 10  # B breaks 30 images of the CNN
    right_b = answers["b"]["cnn"] == labels
    result = Result(
        a=Revision("main", "a" * 40, {}), b=Revision("workspace", None, {}), labels=labels, answers=answers,
        models={"mlp": stats.compare(right, right), "cnn": stats.compare(right, right_b)},
        per_class={n: {c: {"difference": 0.0, "difference_ci": [0.0, 0.0], "p_value": 1.0,
                           "verdict": "no detectable difference"} for c in ("T-shirt/top", "Trouser", "Pullover",
                   "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")} for n in ("mlp", "cnn")},
        within={"a": stats.compare(right, right), "b": stats.compare(right_b, right)},
    )  # fmt: skip
    markdown = render_markdown(result)
    assert "- **cnn: -15.00 points" in markdown and "p < 0.001: A is better**" in markdown
    assert "A = main (aaaaaaa), B = the workspace: 200 test images" in markdown
