"""The training stages' DVCLive logs: written as each epoch ends, read back for the report."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
from dvclive import Live
from scmrepo.exceptions import SCMError

from stages.lib import paths

# DVCLive names a random experiment at INFO even under a plain `dvc repro`, where none is saved.
logging.getLogger("dvclive").setLevel(logging.WARNING)

HISTORY_COLUMNS = ("epoch", *paths.HISTORY_METRICS)


class TrainingLive(Live):
    """DVCLive for a training stage: it writes dvclive/train_<name>/ as each epoch ends, so
    `dvc exp show`, DVC's VS Code extension and Studio can follow a running stage. dvc.yaml
    declares those files, so DVCLive writes no dvc.yaml of its own, and saving an experiment is
    `dvc exp run`'s job (or the sweep's), not the stage's.
    """

    def __init__(self, directory: Path):
        super().__init__(str(directory), save_dvc_exp=False, dvcyaml=None, report=None)

    def _init_dvc(self) -> None:
        # DVCLive 3.49 asks git for HEAD before its own check for a repository without commits,
        # and fails there (`dvc repro` right after `git init`): then there is no experiment to
        # name, and the files are all it needs to write.
        try:
            super()._init_dvc()
        except SCMError:
            self._dvc_repo, self._dvc_file = None, "dvc.yaml"


def log_epoch(live: Live, row: dict[str, float]) -> None:
    """One epoch's row into DVCLive: a line per metric in its TSV, then the step's summary."""
    for key in HISTORY_COLUMNS[1:]:
        live.log_metric(key, round(row[key], 6))
    live.next_step()


def read_history(name: str, root: Path = paths.ROOT) -> dict[str, np.ndarray]:
    """DVCLive's per-epoch TSVs of `train-<name>` in the checkout `root` as arrays, with `epoch` =
    DVCLive's step + 1."""
    history = {}
    for metric in paths.HISTORY_METRICS:
        with paths.in_checkout(paths.history_file(name, metric), root).open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if "epoch" not in history:  # every metric's TSV has the same steps
            history["epoch"] = np.array([int(r["step"]) + 1 for r in rows])
        history[metric] = np.array([float(r[metric]) for r in rows])
    return history
