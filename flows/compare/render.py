"""A comparison (flows/compare/result.py) as text, Markdown (a pull-request comment), JSON, or a
self-contained HTML page with pictures."""

from __future__ import annotations

import json

import numpy as np

from flows.compare.result import SHOWN_IMAGES, Result
from stages.lib import figures, paths, stats
from stages.lib.document import Block, Figure, Heading, Para, Table, markdown_table, text_table, to_html
from stages.lib.idx import CLASS_NAMES
from stages.lib.scoring import confusion_matrix


def verdict_lines(result: Result) -> list[str]:
    """One line per model: `cnn: +0.41 points [+0.12, +0.70], p = 0.006: B is better`."""
    return [f"{name}: {c.summary()}: {c.verdict()}" for name, c in result.models.items()]


def _model_rows(result: Result) -> tuple[list[str], list[list[str]]]:
    header = ["model", "A", "B", "B - A (points)", "p", "B fixes", "B breaks", "verdict"]
    rows = [
        [
            name,
            f"{stats.percent(c.accuracy_a)} {stats.interval(c.ci_a)}",
            f"{stats.percent(c.accuracy_b)} {stats.interval(c.ci_b)}",
            f"{stats.points(c.difference)} [{stats.points(c.difference_ci[0])}, {stats.points(c.difference_ci[1])}]",
            stats.p_text(c.p_value).removeprefix("p = "),
            str(c.fixed),
            str(c.broken),
            c.verdict(),
        ]
        for name, c in result.models.items()
    ]
    return header, rows


def _class_rows(result: Result) -> tuple[list[str], list[list[str]]]:
    header = ["class", *(f"{name} {column}" for name in paths.MODELS for column in ("B - A (points)", "p (Holm)"))]
    rows = []
    for cls in CLASS_NAMES:
        row = [cls]
        for name in paths.MODELS:
            c = result.per_class[name][cls]
            marker = " *" if c["verdict"] != "no detectable difference" else ""
            low, high = c["difference_ci"]
            row += [
                f"{stats.points(c['difference'])} [{stats.points(low)}, {stats.points(high)}]",
                stats.p_text(c["p_value"]).removeprefix("p = ") + marker,
            ]
        rows.append(row)
    return header, rows


def _within_lines(result: Result) -> list[str]:
    revisions = {"a": result.a, "b": result.b}
    return [
        f"{revisions[side].label}: CNN - MLP = {c.summary()}: {c.verdict('MLP', 'CNN')}"
        for side, c in result.within.items()
    ]


def _heading(result: Result) -> str:
    return (
        f"A = {result.a.label}, B = {result.b.label}: {result.labels.size:,} test images, "
        f"{stats.CONFIDENCE:.0%} intervals, McNemar's mid-p"
    )


def render_text(result: Result) -> str:
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    return "\n".join([
        _heading(result), "", text_table(models_header, models), "", *verdict_lines(result), "",
        "Per class (p adjusted over the 10 classes by Holm's method; * a detectable difference):",
        text_table(class_header, classes), "", "MLP against CNN on the same images:", *_within_lines(result),
    ]) + "\n"  # fmt: skip


def render_markdown(result: Result) -> str:
    """For a pull-request comment (CML's `cml comment create`)."""
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    return "\n".join([
        "## Is the difference real?", "", _heading(result) + ".", "",
        *(f"- **{line}**" for line in verdict_lines(result)), "", *markdown_table(models_header, models), "",
        "<details><summary>Per class (Holm-adjusted p; * a detectable difference)</summary>", "",
        *markdown_table(class_header, classes), "", "</details>", "", "MLP against CNN on the same images:", "",
        *(f"- {line}" for line in _within_lines(result)), "",
    ])  # fmt: skip


def _changed(result: Result, name: str, which: str) -> np.ndarray:
    """Indices of the test images B broke (`which` = "broken") or fixed, for model `name`."""
    right_a = result.answers["a"][name] == result.labels
    right_b = result.answers["b"][name] == result.labels
    return np.flatnonzero(right_a & ~right_b if which == "broken" else ~right_a & right_b)


def html_blocks(result: Result) -> list[Block]:
    models_header, models = _model_rows(result)
    class_header, classes = _class_rows(result)
    blocks: list[Block] = [
        Para(_heading(result) + "."),
        *(Para(line) for line in verdict_lines(result)),
        Table(models_header, models),
        Heading("Per class"),
        Para("p adjusted over the 10 classes by Holm's method; * marks a detectable difference."),
        Table(class_header, classes),
        Heading("MLP against CNN"),
        *(Para(line) for line in _within_lines(result)),
    ]
    assert result.images is not None and result.histories is not None
    for name in paths.MODELS:
        blocks.append(Heading(f"{name.upper()}: the test images B broke and fixed"))
        for which in ("broken", "fixed"):
            index = _changed(result, name, which)
            if not index.size:
                blocks.append(Para(f"B {which} none."))
                continue
            shown = index[:SHOWN_IMAGES]
            answers = {"A": result.answers["a"][name][shown], "B": result.answers["b"][name][shown]}
            title = f"{name.upper()}: {len(shown)} of the {index.size} images B {which}"
            png = figures.plot_changed_images(result.images[shown], result.labels[shown], answers, title)
            blocks.append(Figure(f"{name}_{which}", title, png))
    curves = {label: models for label, models in result.histories.items() if models}
    if curves:
        blocks += [Heading("Learning curves"), Figure("curves", "validation accuracy per epoch of both revisions",
                                                      figures.plot_revision_curves(curves))]  # fmt: skip
    differences = {
        f"{name.upper()}: B - A": confusion_matrix(result.labels, result.answers["b"][name])
        - confusion_matrix(result.labels, result.answers["a"][name])
        for name in paths.MODELS
    }
    blocks += [
        Heading("Confusion matrices, B - A"),
        Para("Images per (actual, predicted) pair that B has more (blue) or fewer (red) of than A."),
        Figure("confusion_difference", "difference of the confusion matrices", figures.plot_confusion_differences(
            differences)),
    ]  # fmt: skip
    return blocks


def render_html(result: Result) -> str:
    return to_html(html_blocks(result), f"{result.b.label} against {result.a.label}")


def render_json(result: Result) -> str:
    return json.dumps(result.as_json(), indent=2) + "\n"
