"""A sweep's leaderboard: one row per point, best first, with intervals and the points no test tells
apart from the best; points differing only in seeds as groups. As Prefect tables and aligned text."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from stages.lib import paths, stats
from stages.lib.document import text_table

# What each point reports (flows/experiment.py: result_row): each model's validation accuracy (a
# search's objective), its test scores, then the seconds each training took.
METRIC_COLUMNS = (
    *(f"{model}_val_accuracy" for model in paths.MODELS),
    *(f"{model}_{metric}" for model in paths.MODELS for metric in ("accuracy", "macro_f1")),
    *(f"{model}_train_seconds" for model in paths.MODELS),
)
ORDER = {"done": 0, "pruned": 1}  # then failed, lost, stopped
_LONG_DECIMAL = re.compile(r"-?0?\.0*[1-9]\d{4,}|-?[1-9]\d*\.\d{5,}")  # more than 4 significant digits


def varying_keys(points: dict[str, list[str]]) -> list[str]:
    """The params whose value differs between points, in the order the grid gives them."""
    values: dict[str, set[str]] = {}
    for overrides in points.values():
        for override in overrides:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def leaderboard(
    rows: list[dict],
    points: dict[str, list[str]],
    varying: list[str],
    test: tuple[np.ndarray, dict[str, dict[str, np.ndarray]]] | None = None,
    objective: str = "cnn",
) -> list[dict]:
    """One row per trial, best first by the objective (`objective`'s validation accuracy at its
    kept epoch, with its 95% interval), then the pruned trials, then the failed ones.

    `test`, the test labels and each finished trial's predicted classes per model, adds whether
    each trial is distinguishable from the best one on the test images (McNemar's test on the
    images where exactly one of the two is right), beside the objective model's test accuracy.
    """
    table = []
    for row in rows:
        values = dict(o.split("=", 1) for o in points[row["experiment"]])
        score, images = row.get(f"{objective}_val_accuracy"), row.get("val_images")
        ci = stats.interval(stats.wilson(round(score * images), images)) if score is not None and images else ""
        table.append(
            {
                "experiment": row["experiment"],
                **{key: values[key] for key in varying},
                f"{objective}_val_accuracy": score,
                f"{objective}_val_accuracy_ci": ci,
                **{column: row.get(column) for column in METRIC_COLUMNS if column != f"{objective}_val_accuracy"},
                "where": row.get("where", ""),  # the machine it ran on, in the end
                "lost_on": row.get("lost_on", ""),  # machines lost while they ran it
                "ran": row.get("ran", ""),  # stages computed for this point; "none": all restored
                "seconds": row.get("seconds"),  # the point's wall time: clone, pull, stages, push
                "status": row["status"],
                "error": row.get("error", ""),
            }
        )
    table.sort(key=lambda r: (ORDER.get(r["status"], 2), -(r[f"{objective}_val_accuracy"] or 0)))
    return _against_the_best(table, *test, objective) if test else table


def _against_the_best(
    table: list[dict], labels: np.ndarray, answers: dict[str, dict[str, np.ndarray]], objective: str
) -> list[dict]:
    """Each row with whether the test images tell it apart from the best trial, beside the test accuracy."""
    scored = [r["experiment"] for r in table if r["status"] == "done" and r["experiment"] in answers]
    right = {name: answers[name][objective] == labels for name in scored}
    marked = []
    for row in table:
        extra = {"vs_best": ""}
        if row["experiment"] in right:
            against = stats.compare(right[scored[0]], right[row["experiment"]])
            if row["experiment"] == scored[0]:
                extra["vs_best"] = "best"
            else:
                worse = against.better() == "a"
                extra["vs_best"] = f"{'worse' if worse else 'indistinguishable'} ({stats.p_text(against.p_value)})"
        columns = list(row)
        at = columns.index(f"{objective}_accuracy") + 1
        marked.append({**{c: row[c] for c in columns[:at]}, **extra, **{c: row[c] for c in columns[at:]}})
    return marked


def seed_groups(table: list[dict], varying: list[str]) -> list[dict]:
    """Finished points that differ only in seed keys (`*.seed`), as groups: how many, and per
    model the test accuracy's mean ± standard deviation and its range. Empty when no seed varies."""
    seeds = [key for key in varying if key.rsplit(".", 1)[-1] == "seed"]
    if not seeds:
        return []
    others = [key for key in varying if key not in seeds]
    groups: dict[tuple, list[dict]] = {}
    for row in table:
        if row["status"] == "done":
            groups.setdefault(tuple(row[key] for key in others), []).append(row)
    summary = []
    for values, members in groups.items():
        group: dict[str, Any] = {**dict(zip(others, values, strict=True)), "points": len(members)}
        for model in paths.MODELS:
            accuracies = np.array([m[f"{model}_accuracy"] for m in members], dtype=float)
            spread = accuracies.std(ddof=1) if len(accuracies) > 1 else 0.0
            group[f"{model}_accuracy"] = f"{accuracies.mean():.4f} ± {spread:.4f}"
            group[f"{model}_range"] = f"{accuracies.min():.4f}-{accuracies.max():.4f}"
        summary.append((-float(np.mean([m["cnn_accuracy"] for m in members])), group))
    return [group for _, group in sorted(summary, key=lambda item: item[0])]


def format_table(rows: list[dict]) -> str:
    """The leaderboard as aligned text columns."""
    if not rows:
        return "(no points)"

    def cell(value: Any) -> str:
        if isinstance(value, float):  # accuracies and F1 to 4 digits, seconds to 1
            return f"{value:.4f}" if abs(value) < 1 else f"{value:.1f}"
        if isinstance(value, str) and _LONG_DECIMAL.fullmatch(value):  # drawn: 0.009278, not 0.0092776573
            return f"{float(value):.4g}"
        return "" if value is None else str(value)

    columns = list(rows[0])
    return text_table(columns, [[cell(r[c]) for c in columns] for r in rows])
