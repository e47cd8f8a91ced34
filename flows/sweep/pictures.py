"""A search's pictures, Optuna's own (`optuna.visualization.matplotlib`) of the study a sweep holds:
the optimization history, the intermediate values (each trial's validation accuracy per epoch, where
pruning shows), parallel coordinates and parameter importances. PNG files beside the leaderboard's
CSV, and one Prefect markdown artifact with them embedded. A picture the study cannot show yet (too
few finished trials, no param that varies, no per-epoch values) is skipped with one log line.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import matplotlib as drawing
from prefect.artifacts import create_markdown_artifact

from stages.lib.figures import png
from stages.lib.files import write_bytes

TITLES = {
    "optimization-history": "Optimization history: each finished trial's objective, and the best so far",
    "intermediate-values": "Intermediate values: each trial's validation accuracy per epoch (pruned ones stop early)",
    "parallel-coordinate": "Parallel coordinates: each finished trial's params and objective",
    "param-importances": "Parameter importances (fANOVA) for the objective",
}


def _finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def _varying(finished: list[FrozenTrial], params: list[str]) -> list[str]:
    """The params that take more than one value among the finished trials."""
    return [p for p in params if len({repr(t.params.get(p)) for t in finished}) > 1]


def why_not(trials: list[FrozenTrial], params: list[str]) -> dict[str, str | None]:
    """For each picture, why the trials cannot show it (None: they can); `params`: the search's."""
    finished = _finished(trials)
    varying = _varying(finished, params)
    reasons: dict[str, str | None] = dict.fromkeys(TITLES)
    if not finished:
        reasons["optimization-history"] = "no trial finished"
    if not any(t.intermediate_values for t in trials):
        reasons["intermediate-values"] = "no trial reported per-epoch values (they go to a pruner: --prune median)"
    for name in ("parallel-coordinate", "param-importances"):
        if len(finished) < 2:
            reasons[name] = f"{len(finished)} finished trial{'' if len(finished) == 1 else 's'}, fewer than 2"
        elif not varying:
            reasons[name] = "no param varies among the finished trials"
    if reasons["param-importances"] is None and len({t.value for t in finished}) < 2:
        reasons["param-importances"] = "every finished trial has the same objective"
    return reasons


def draw(study: optuna.Study, params: list[str], objective: str, logger: Any) -> dict[str, bytes]:
    """{name: PNG} of each picture the study can show (`objective`: what its value is called); one
    log line for each it cannot."""
    trials = study.get_trials(deepcopy=False)
    reasons, varying = why_not(trials, params), _varying(_finished(trials), params)
    plots: dict[str, Callable[[], Any]] = {
        "optimization-history": lambda: drawing.plot_optimization_history(study, target_name=objective),
        "intermediate-values": lambda: drawing.plot_intermediate_values(study),  # its axis: the epoch
        "parallel-coordinate": lambda: drawing.plot_parallel_coordinate(study, params=varying),
        "param-importances": lambda: drawing.plot_param_importances(study, params=varying, target_name=objective),
    }
    drawn = {}
    for name, plot in plots.items():
        if reasons[name] is not None:
            logger.info("no %s picture: %s", name.replace("-", " "), reasons[name])
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot()
        except Exception as exc:  # noqa: BLE001 (a picture never fails a sweep that ran)
            logger.warning("no %s picture: Optuna could not draw it (%s)", name.replace("-", " "), exc)
            continue
        wide = name == "parallel-coordinate" and len(varying) > 3  # an axis a param
        axes.figure.set_size_inches(1.5 * len(varying) + 2 if wide else 6.4, 4.8)
        drawn[name] = png(axes.figure)
    return drawn


def save(drawn: dict[str, bytes], csv: Path) -> dict[str, Path]:
    """Each picture beside the leaderboard's CSV, as `<its stem>-<picture>.png`."""
    files = {name: csv.with_name(f"{csv.stem}-{name}.png") for name in drawn}
    for name, data in drawn.items():
        write_bytes(files[name], data)
    return files


def markdown(drawn: dict[str, bytes], files: dict[str, Path]) -> str:
    """The pictures as one Markdown document, each embedded (a data URI) and named by its file."""
    parts = []
    for name, data in drawn.items():
        uri = f"data:image/png;base64,{base64.b64encode(data).decode()}"
        parts += [f"### {TITLES[name]}", "", f"![{name}]({uri})", "", f"`{files[name]}`", ""]
    return "\n".join(parts)


def publish(
    study: optuna.Study, params: list[str], objective: str, csv: Path, key: str, logger: Any
) -> dict[str, Path]:
    """Draw the study's pictures, save them beside `csv`, and show them as the markdown artifact `key`."""
    drawn = draw(study, params, objective, logger)
    files = save(drawn, csv)
    if drawn:
        create_markdown_artifact(key=key, markdown=markdown(drawn, files), description="The search's pictures")
        logger.info("the search's pictures: %s", ", ".join(map(str, files.values())))
    return files
