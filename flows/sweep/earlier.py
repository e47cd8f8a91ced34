"""What an earlier start of the same sweep left: its finished trials as DVC experiments (params and
per-epoch validation curves), its pruned and still-running trials as flow runs on Prefect."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

from flows.plumbing import dvc, git
from flows.sweep.points import PRUNED_TAG, point_row
from flows.sweep.search import Restored
from flows.sweep.space import Dimension, value_of
from stages.lib import paths


def _experiments(node: Any, found: dict[str, dict]) -> dict[str, dict]:
    """{name: {"rev": sha, "params": ..., "metrics": ...}} of every experiment in `dvc exp show --json`."""
    if isinstance(node, dict):
        data = node.get("data")
        if node.get("name") and isinstance(data, dict) and data.get("params") and node.get("rev"):
            found[node["name"]] = {"rev": node["rev"], "params": data["params"], "metrics": data.get("metrics", {})}
        for value in node.values():
            _experiments(value, found)
    elif isinstance(node, list):
        for value in node:
            _experiments(value, found)
    return found


def _lookup(document: dict, key: str) -> Any:
    for part in key.split("."):
        document = document[part]
    return document


def finished(
    root: Path, sweep: str, commit: str, git_remote: str, dimensions: list[Dimension], objective: str
) -> list[Restored]:
    """The sweep's trials that became DVC experiments (on the git remote, pulled here)."""
    listed = dvc.dvc(root, "exp", "list", git_remote, "--rev", commit, "--name-only", check=False).stdout.split()
    names = [name for name in listed if name.rsplit("-", 1)[0] == sweep and name.rsplit("-", 1)[-1].isdigit()]
    if not names:
        return []
    dvc.dvc(root, "exp", "pull", "--force", git_remote, *names)
    shown = _experiments(json.loads(dvc.dvc(root, "exp", "show", "--json").stdout or "[]"), {})
    live = str(paths.training_metrics_file(objective).relative_to(paths.ROOT))
    curve_file = str(paths.history_file(objective, "val_accuracy").relative_to(paths.ROOT))
    restored = []
    for name in names:
        exp = shown.get(name)
        if exp is None:
            continue
        params = exp["params"]["params.yaml"]["data"]
        value = exp["metrics"].get(live, {}).get("data", {}).get("val_accuracy")
        text = git.show(root, exp["rev"], curve_file) or ""
        rows = csv.DictReader(io.StringIO(text), delimiter="\t")
        curve = {int(r["step"]) + 1: float(r["val_accuracy"]) for r in rows}
        point = {d.key: _lookup(params, d.key) for d in dimensions}
        restored.append(Restored(name, point, "finished", value, curve))
    return restored


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
