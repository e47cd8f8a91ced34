"""A sweep's leaderboard as a pandas DataFrame: one row per trial, best first by the objective (a
validation accuracy, with its Wilson interval), whether the test images tell each trial apart from
the best, and the trials that differ only in seeds as groups (mean ± std). The whole frame is the
CSV (`--csv`) and the Prefect table artifact; a terminal gets the columns that fit 100 characters.

Every accuracy-like column (validation and test accuracy, the interval's bounds, macro-F1) is a
fraction in [0, 1], as metrics/evaluate.json, DVCLive and `dvc exp show` give it: a row reads the
same as the experiment it came from, and nothing is scaled on the way in and back on the way out.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import paths, stats
from stages.lib.document import text_table
from stages.lib.files import write_text

# What each point reports (flows/trial/flow.py: result_row): each model's validation accuracy (a
# search's objective), its test scores, then the seconds each training took.
METRIC_COLUMNS = (
    *(f"{model}_val_accuracy" for model in paths.MODELS),
    *(f"{model}_{metric}" for model in paths.MODELS for metric in ("accuracy", "macro_f1")),
    *(f"{model}_train_seconds" for model in paths.MODELS),
)
RUN_COLUMNS = ("where", "lost_on", "ran", "seconds", "status", "error")  # where and how each trial ran
ORDER = {"done": 0, "pruned": 1}  # then failed, lost, stopped
WIDTH = 100  # a terminal's columns for the printed leaderboard
_LONG_DECIMAL = re.compile(r"-?0?\.0*[1-9]\d{4,}|-?[1-9]\d*\.\d{5,}")  # more than 4 significant digits
_LONGEST_VALUE = 16  # a param's value beyond this many characters is cut in the print (the CSV has it all)
_LONGEST_NAME = 24  # an experiment's name, likewise (its number kept)


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
) -> pd.DataFrame:
    """One row per trial, best first by the objective (`objective`'s validation accuracy at its
    kept epoch, with its 95% Wilson interval), then the pruned trials, then the failed ones.

    The varying params are the text each point was given (`-S` syntax). `test`, the test labels and
    each finished trial's predicted classes per model, fills `vs_best` (best, tie, worse or better)
    and `vs_best_p`: McNemar's test of each trial against the best one on the images where exactly
    one of the two is right, beside the objective model's test accuracy.
    """
    score = f"{objective}_val_accuracy"
    given = pd.DataFrame.from_records(rows).reindex(columns=["experiment", *METRIC_COLUMNS, "val_images", *RUN_COLUMNS])
    values = pd.DataFrame([dict(o.split("=", 1) for o in points[name]) for name in given["experiment"]])
    table = pd.concat([given[["experiment"]], values.reindex(columns=varying)], axis=1)
    for column in [score, *(c for c in METRIC_COLUMNS if c != score)]:  # the objective first
        table[column] = given[column].astype(float)
        if column == score:
            table[f"{score}_ci_low"], table[f"{score}_ci_high"] = _wilson(table[score], given["val_images"])
        if column == f"{objective}_accuracy":
            table["vs_best"], table["vs_best_p"] = None, np.nan
    for column in RUN_COLUMNS:
        table[column] = given[column].astype(float) if column == "seconds" else given[column]
    rank = table["status"].map(ORDER).fillna(len(ORDER))
    order = np.lexsort((-table[score].fillna(-np.inf).to_numpy(), rank.to_numpy()))  # stable
    table = _missing_as_nan(table.iloc[order].reset_index(drop=True))
    return _against_the_best(table, *test, objective) if test else table


def _wilson(score: pd.Series, images: pd.Series) -> tuple[list[float], list[float]]:
    """The 95% Wilson interval's bounds of each accuracy (NaN where it has no accuracy or no count)."""
    bounds = [
        stats.wilson(round(s * n), int(n)) if pd.notna(s) and pd.notna(n) and n > 0 else (np.nan, np.nan)
        for s, n in zip(score, images.astype(float), strict=True)
    ]
    return [low for low, _ in bounds], [high for _, high in bounds]


def _missing_as_nan(table: pd.DataFrame) -> pd.DataFrame:
    """One kind of missing value, NaN, which a CSV keeps: not None, not an empty string."""
    table = table.replace("", np.nan)
    return table.where(table.notna(), np.nan)


def _against_the_best(
    table: pd.DataFrame, labels: np.ndarray, answers: dict[str, dict[str, np.ndarray]], objective: str
) -> pd.DataFrame:
    """`vs_best` and `vs_best_p` of each finished trial whose test predictions are known."""
    scored = table.index[(table["status"] == "done") & table["experiment"].isin(list(answers))]
    words, ps = table["vs_best"].tolist(), table["vs_best_p"].tolist()
    right = {i: answers[table.at[i, "experiment"]][objective] == labels for i in scored}
    for i in scored:
        if i == scored[0]:
            words[i] = "best"
            continue
        against = stats.compare(right[scored[0]], right[i])
        words[i], ps[i] = {"a": "worse", "b": "better"}.get(against.better(), "tie"), against.p_value
    return table.assign(vs_best=words, vs_best_p=ps)


def seed_groups(table: pd.DataFrame, varying: list[str], objective: str = "cnn") -> pd.DataFrame:
    """Finished trials that differ only in seed keys (`*.seed`), as groups, best first by the
    objective's mean: how many, and the mean, standard deviation (n - 1), least and most of the
    objective and of each model's test accuracy. Empty when no seed varies."""
    seeds = [key for key in varying if key.rsplit(".", 1)[-1] == "seed"]
    if not seeds:
        return pd.DataFrame()
    others = [key for key in varying if key not in seeds]
    measures = [f"{objective}_val_accuracy", *(f"{model}_accuracy" for model in paths.MODELS)]
    done = table[table["status"] == "done"]
    grouped = done.groupby(others, sort=False) if others else done.groupby(lambda _: "all")
    summary = grouped[measures].agg(["mean", "std", "min", "max"])
    summary.columns = [f"{measure}_{statistic}" for measure, statistic in summary.columns]
    summary.insert(0, "points", grouped.size())
    summary = summary.sort_values(f"{measures[0]}_mean", ascending=False, kind="stable")
    return summary.reset_index() if others else summary.reset_index(drop=True)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """The whole frame as CSV, written all or nothing; `pd.read_csv(path)` reads it back."""
    write_text(path, table.to_csv(index=False))


# --- the printed views ---


def format_table(table: pd.DataFrame | list[dict], objective: str = "cnn", width: int = WIDTH) -> str:
    """The leaderboard for a terminal, at most `width` characters wide: the experiment, the varying
    params, the objective with its interval, vs best (with McNemar's p) and the status; under it,
    why each trial that did not finish stopped. The params are named by the last part of their key,
    by its initials when the names do not fit (a legend follows), and those that still do not fit
    are left out, named in a line under the table. `table` may be the Prefect artifact's rows."""
    table = pd.DataFrame(table)
    if table.empty:
        return "(no trials)"
    score = f"{objective}_val_accuracy"
    params = list(table.columns[1 : table.columns.get_loc(score)])
    values = {key: table[key].map(_value_cell).tolist() for key in params}
    low, high = table[f"{score}_ci_low"], table[f"{score}_ci_high"]
    fixed = {
        f"{score} [95% CI]": [_estimate(*v) for v in zip(table[score], low, high, strict=True)],
        "vs_best": [_versus(word, p) for word, p in zip(table["vs_best"], table["vs_best_p"], strict=True)],
        "status": table["status"].tolist(),
    }
    fixed = {name: cells for name, cells in fixed.items() if name != "vs_best" or any(cells)}
    experiments = table["experiment"].map(_short_name).tolist()
    room = width - sum(_width(name, cells) + 2 for name, cells in {"experiment": experiments, **fixed}.items()) + 2
    headers, left_out = _param_headers(params, values, room)
    columns = {"experiment": experiments, **{headers[key]: values[key] for key in headers}, **fixed}
    notes = []
    if any(header != key.rsplit(".", 1)[-1] for key, header in headers.items()):
        notes.append(", ".join(f"{header}={key}" for key, header in headers.items()))
    if left_out:
        notes.append(f"not shown: {', '.join(left_out)} (every column: the CSV and the Prefect artifact)")
    notes += [f"{name}: {str(error).splitlines()[0]}" for name, error in zip(table["experiment"], table["error"],
              strict=True) if pd.notna(error)]  # fmt: skip
    lines = [text_table(list(columns), [list(row) for row in zip(*columns.values(), strict=True)])]
    return "\n".join(lines + [textwrap.fill(note, width, subsequent_indent="  ") for note in notes])


def format_groups(groups: pd.DataFrame, objective: str = "cnn") -> str:
    """The seed groups for a terminal: each measure as mean ± std (the least and most: the CSV)."""
    measures = [f"{objective}_val_accuracy", *(f"{model}_accuracy" for model in paths.MODELS)]
    others = list(groups.columns[: groups.columns.get_loc("points")])
    columns = {
        **{name: groups[key].map(_value_cell) for key, name in zip(others, _param_names(others), strict=True)},
        "points": groups["points"].map(str),
        **{m: [_spread(*v) for v in zip(groups[f"{m}_mean"], groups[f"{m}_std"], strict=True)] for m in measures},
    }
    return text_table(list(columns), [list(row) for row in zip(*columns.values(), strict=True)])


def _width(header: str, cells: list[str]) -> int:
    return max(len(header), *(len(cell) for cell in cells))


def _param_headers(keys: list[str], values: dict[str, list[str]], room: int) -> tuple[dict[str, str], list[str]]:
    """{key: its header} of the params shown in `room` characters, and the keys left out: named by
    the last part of the key if all fit so, else by its initials (when those are distinct), taken in
    order while they fit."""
    names = dict(zip(keys, _param_names(keys), strict=True))
    initials = {key: "".join(part[0] for part in re.split(r"[._]", name) if part) for key, name in names.items()}
    if sum(_width(names[key], values[key]) + 2 for key in keys) > room and len(set(initials.values())) == len(keys):
        names = initials
    shown: dict[str, str] = {}
    for key in keys:
        room -= _width(names[key], values[key]) + 2
        if room < 0:
            break
        shown[key] = names[key]
    return shown, [key for key in keys if key not in shown]


def _param_names(keys: list[str]) -> list[str]:
    """Each key by its last part (`learning_rate`), or whole where two keys share a last part."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return [part if last.count(part) == 1 else key for key, part in zip(keys, last, strict=True)]


def _value_cell(value: object) -> str:
    """A param's value as given, a drawn decimal to 4 significant digits (0.009278, not 0.0092776573)."""
    if not isinstance(value, str):
        return "" if pd.isna(value) else str(value)
    if _LONG_DECIMAL.fullmatch(value):
        return f"{float(value):.4g}"
    return value if len(value) <= _LONGEST_VALUE else value[: _LONGEST_VALUE - 1] + "…"


def _short_name(name: str) -> str:
    """An experiment's name, cut in the middle when long: its sweep's start and its number stay."""
    if len(name) <= _LONGEST_NAME:
        return name
    number = "-" + name.rsplit("-", 1)[-1] if "-" in name else ""
    return name[: _LONGEST_NAME - len(number) - 1] + "…" + number


def _estimate(value: float, low: float, high: float) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.4f}" if pd.isna(low) else f"{value:.4f} [{low:.4f}, {high:.4f}]"


def _versus(word: object, p: float) -> str:
    if pd.isna(word):
        return ""
    return str(word) if pd.isna(p) else f"{word} {stats.p_text(p).replace(' ', '')}"


def _spread(mean: float, std: float) -> str:
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"
