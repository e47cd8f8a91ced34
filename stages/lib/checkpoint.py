"""Checkpoints of unfinished training runs: a killed stage resumes from its last completed epoch."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from stages.lib import paths
from stages.lib.files import atomic_path, save_arrays, write_json
from stages.lib.tf_runtime import keras

log = logging.getLogger("stages.checkpoint")


@dataclass
class Progress:
    """Where a training run is: one history row per completed epoch, the best validation accuracy
    so far with its weights, and the epochs since it improved."""

    rows: list[dict[str, float]] = field(default_factory=list)
    best: float = -math.inf
    wait: int = 0
    best_weights: list[np.ndarray] | None = None


def fingerprint(stage: str, p: dict[str, Any], pipeline: Path = paths.PIPELINE) -> str:
    """What a run of `stage` depends on, exactly as dvc.yaml says: its params and the bytes of
    every file of its deps (code, data). A checkpoint of another fingerprint is stale."""
    deps = yaml.safe_load(pipeline.read_text())["stages"][stage]["deps"]
    digest = hashlib.sha256(json.dumps({"stage": stage, **p}, sort_keys=True).encode())
    for dep in deps:
        path = pipeline.parent / dep
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(str(file.relative_to(pipeline.parent)).encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


class Checkpoint:
    """The state of an unfinished training run in one directory, outside DVC's outs: the model
    with its optimizer after the last completed epoch, and its Progress.

    `fingerprint` names what the run was started from (see `fingerprint`); a checkpoint with
    another fingerprint is stale and ignored.
    """

    def __init__(self, directory: Path, fingerprint: str):
        self.directory, self.fingerprint = directory, fingerprint

    def save(self, model: keras.Model, progress: Progress) -> None:
        epoch = len(progress.rows)
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / f"epoch-{epoch}.keras") as tmp:
            model.save(tmp)
        save_arrays(self.directory / f"best-{epoch}.npz", **{f"w{i}": w for i, w in enumerate(progress.best_weights)})
        # state.json is written last and names the epoch: a kill at any point leaves it
        # pointing at files that are complete.
        state = {"fingerprint": self.fingerprint, "epoch": epoch, "rows": progress.rows,
                 "best": progress.best, "wait": progress.wait}  # fmt: skip
        write_json(self.directory / "state.json", state)
        for old in self.directory.glob("*"):
            if old.name not in (f"epoch-{epoch}.keras", f"best-{epoch}.npz", "state.json"):
                old.unlink()
        log.info("%s: checkpoint saved after epoch %d", model.name, epoch)

    def restore(self, name: str) -> tuple[keras.Model, Progress] | None:
        """The model to continue from and where it stopped; None if there is no usable checkpoint."""
        try:
            state = json.loads((self.directory / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.info("%s: ignoring a checkpoint of other params, data or code", name)
            self.remove()
            return None
        epoch = state["epoch"]
        model = keras.models.load_model(self.directory / f"epoch-{epoch}.keras", safe_mode=True)
        with np.load(self.directory / f"best-{epoch}.npz", allow_pickle=False) as best:
            weights = [best[f"w{i}"] for i in range(len(best.files))]
        log.info("%s: resuming after epoch %d from %s", name, epoch, self.directory)
        return model, Progress(state["rows"], state["best"], state["wait"], weights)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
