"""How long a training stage and the whole run have left, from the epochs' measured times.

The stage's own time left is its remaining epochs at the mean time of those it has run (early
stopping may end it sooner). The run's adds the other training stages that DVC has still to run:
the epochs params.yaml now asks of each at the time per epoch of its last recorded run (its DVCLive
summary), scaled by how much faster or slower this machine runs this stage than its last recorded
run did. DVC deletes a stage's DVCLive summary when it starts the stage, so the record is the
summary if it is there, else the copy the stage's last successful run kept (stages/lib/last_run.py),
else the one committed at HEAD (a fresh clone's).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from stages.lib import last_run, paths

TRAINING = {paths.training_stage(name): name for name in paths.MODELS}


def _summary_text(stage: str, name: str, root: Path) -> str | None:
    """The stage's last DVCLive summary: in the workspace, kept by its last run, or committed at HEAD."""
    relative = paths.training_metrics_file(name).relative_to(paths.ROOT)
    for file in (root / relative, last_run.kept_copy(stage, root) / relative):
        if file.is_file():
            return file.read_text()
    try:
        shown = subprocess.run(["git", "show", f"HEAD:{relative}"], cwd=root, capture_output=True, text=True,
                               timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None


def recorded(root: Path = paths.ROOT) -> dict[str, dict[str, float]]:
    """Each training stage's last recorded run: {stage: {seconds, epochs}} (see the module's docstring)."""
    found = {}
    for stage, name in TRAINING.items():
        try:
            summary = json.loads(_summary_text(stage, name, root) or "")
            found[stage] = {"seconds": float(summary["train_seconds"]), "epochs": int(summary["epochs_run"])}
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 (what DVC records, not a security measure)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def still_to_run(stage: str, root: Path = paths.ROOT) -> list[str]:
    """The other training stages whose dvc.lock record no longer matches their params, deps or
    outputs: what `dvc repro` has still to run (or is running beside this one)."""
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
        current = yaml.safe_load((root / "params.yaml").read_text())
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return [s for s in TRAINING if s != stage]
    pending = []
    for other, name in TRAINING.items():
        if other == stage:
            continue
        record = lock.get(other, {})
        section = paths.training_section(name)
        stale = record.get("params", {}).get("params.yaml", {}).get(section) != current.get(section)
        stale = stale or not paths.in_checkout(paths.model_file(name), root).exists()
        for dep in record.get("deps", []) if not stale else []:
            file = root / dep["path"]
            if file.is_file() and _md5(file) != dep.get("md5"):
                stale = True
                break
        if stale or not record:
            pending.append(other)
    return pending


def planned_epochs(root: Path = paths.ROOT) -> dict[str, int]:
    """The epochs params.yaml asks of each training stage (early stopping may end one sooner)."""
    try:
        current = yaml.safe_load((root / "params.yaml").read_text())
        return {stage: int(current[paths.training_section(name)]["epochs"]) for stage, name in TRAINING.items()}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return {}


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Eta:
    """The time-left part of a training stage's epoch line."""

    def __init__(self, stage: str, epochs: int, root: Path = paths.ROOT):
        self.stage, self.epochs = stage, epochs
        self.others = still_to_run(stage, root)
        self.recorded = recorded(root)
        self.scaled = stage in self.recorded  # this machine's speed against that record is known
        self.planned = planned_epochs(root)

    def line(self, rows: list[dict[str, Any]]) -> str:
        """`~31m50s left in train-cnn, ~35m in the run (train-mlp to come: ~3m30s)`."""
        per_epoch = sum(row["seconds"] for row in rows) / len(rows)
        left = (self.epochs - len(rows)) * per_epoch
        text = f"~{_duration(left)} left in {self.stage}"
        if not self.others:
            return text + (", then evaluate and report" if left else "")
        speed = 1.0
        if self.scaled:  # this machine against the record, measured on this stage
            mine = self.recorded[self.stage]
            speed = per_epoch / (mine["seconds"] / max(1, mine["epochs"]))
        expected = {}
        for s in self.others:
            if s in self.recorded:  # per epoch as recorded, for the epochs asked now
                record = self.recorded[s]
                epochs = self.planned.get(s, record["epochs"])
                expected[s] = record["seconds"] / max(1, record["epochs"]) * epochs * speed
        unknown = [s for s in self.others if s not in expected]
        parts = [f"{s} ~{_duration(t)}" for s, t in expected.items()] + [f"{s} not timed yet" for s in unknown]
        note = "" if self.scaled else " as last recorded"
        return f"{text}, ~{_duration(left + sum(expected.values()))} in the run ({', '.join(parts)}{note} to come)"
