"""What an earlier start of the same sweep left: its finished trials as DVC experiments (params and
per-epoch validation curves), its pruned and still-running trials as flow runs on Prefect."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dvc.api import exp_show, read
from dvc.exceptions import DvcException
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.plumbing import dvc, git
from flows.sweep.points import PRUNED_TAG, point_row
from flows.sweep.search import Restored
from flows.sweep.space import Dimension, value_of
from stages.lib import paths


def finished(
    root: Path, sweep: str, commit: str, git_remote: str, dimensions: list[Dimension], objective: str
) -> list[Restored]:
    """The sweep's trials that became DVC experiments (on the git remote, pulled here), with their
    points, objective values and per-epoch validation curves."""
    listed = dvc.dvc(root, "exp", "list", git_remote, "--rev", commit, "--name-only", check=False).stdout.split()
    names = [name for name in listed if name.rsplit("-", 1)[0] == sweep and name.rsplit("-", 1)[-1].isdigit()]
    if not names:
        return []
    dvc.dvc(root, "exp", "pull", "--force", git_remote, *names)
    shown = {row["Experiment"]: row for row in exp_show(repo=str(root), revs=commit) if row.get("Experiment")}
    live = str(paths.training_metrics_file(objective).relative_to(paths.ROOT))
    curve_file = str(paths.history_file(objective, "val_accuracy").relative_to(paths.ROOT))
    restored = []
    for name in names:
        if name not in shown:
            continue
        try:  # a DVC output, pulled with the experiment or read from the DVC remote
            text = read(curve_file, repo=str(root), rev=git.experiment_commit(root, name) or name)
        except (DvcException, OSError):
            text = ""  # nowhere to be found: the trial counts, without its curve
        rows = csv.DictReader(io.StringIO(text), delimiter="\t")
        curve = {int(r["step"]) + 1: float(r["val_accuracy"]) for r in rows}
        point = {d.key: as_given(cell(shown[name], "params.yaml", d.key), d) for d in dimensions}
        restored.append(Restored(name, point, "finished", cell(shown[name], live, "val_accuracy"), curve))
    return restored


def cell(row: dict[str, Any], path: str, key: str) -> Any:
    """`key` of the file `path` in a row of `dvc.api.exp_show`, which names a key by its file only
    where two files have it (`dvclive/train_cnn/metrics.json:val_accuracy`, `train_cnn.seed`)."""
    return row[f"{path}:{key}"] if f"{path}:{key}" in row else row.get(key)


def as_given(shown: Any, dimension: Dimension) -> Any:
    """A param's value as `dvc.api.exp_show` shows it (a float when its text reads as a number, else
    that text: 16 is 16.0, [8, 16] is "[8, 16]") as the value the dimension gave it again."""
    if not dimension.listed:
        return int(shown) if dimension.integer else float(shown)
    for choice in dimension.choices:
        if _as_shown(choice) == shown:
            return choice
    return value_of(str(shown))


def _as_shown(value: Any) -> Any:
    try:
        return float(str(value))
    except ValueError:
        return str(value)


def on_prefect(client: SyncPrefectClient, tag: str, done: set[str], objective: str) -> list[Restored]:
    """The sweep's trials that its tagged flow runs know of, beside the experiments in `done`:
    pruned, still running, or finished (when their experiment was not found)."""
    runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
    restored: dict[str, Restored] = {}
    for run in sorted(runs, key=lambda r: r.expected_start_time or r.created):
        if run.name in done or not run.state:
            continue
        point = {o.partition("=")[0]: value_of(o.partition("=")[2]) for o in run.parameters.get("overrides", [])}
        if PRUNED_TAG in run.tags:
            restored[run.name] = Restored(run.name, point, "pruned")
        elif not run.state.is_final():
            restored[run.name] = Restored(run.name, point, "running")
        elif run.state.is_completed() and (row := point_row(client, run)).get("status") == "done":
            restored[run.name] = Restored(run.name, point, "finished", row.get(f"{objective}_val_accuracy"))
        else:
            restored.pop(run.name, None)  # failed or lost: it runs again
    return list(restored.values())
