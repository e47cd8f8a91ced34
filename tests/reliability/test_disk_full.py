"""A full disk, for real (a small tmpfs mounted over an output directory): one line naming the
file and the space, no traceback, nothing partial, and no output of a stage half rewritten."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow(minutes=2)


@contextmanager
def full_disk(directory: Path, size: str) -> Iterator[None]:
    """`directory` on a tmpfs of `size` (it hides what was there until unmounted)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a tmpfs needs root, as CI runs")
        pytest.skip("mounting a tmpfs needs root: the disk-full tests were skipped")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def _one_error_line(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _mtimes(root: Path, *names: str) -> dict[str, int]:
    return {name: (root / name).stat().st_mtime_ns for name in names}


def test_fetch_names_the_file_and_the_space_it_needs(project):
    raw = project.root / "data/raw"
    with full_disk(raw, "1m"):
        line = _one_error_line(project.run("python", "-m", "stages.fetch", check=False))
        assert os.listdir(raw) in ([], ["t10k-labels-idx1-ubyte"], ["train-labels-idx1-ubyte"])  # whole files only
    assert "data/raw/train-images-idx3-ubyte: no space left on the device (" in line, line
    assert "free in data/raw; it needs 47.0 MB); free some space and rerun" in line, line


def test_training_that_cannot_write_its_model_claims_no_finished_run(project):
    summary = project.root / "dvclive/train_mlp/metrics.json"
    recorded = summary.read_bytes()  # what dvc.lock records of the last run
    with full_disk(project.root / "models", "256k"):
        line = _one_error_line(project.run("python", "-m", "stages.train_mlp", check=False))
        assert os.listdir(project.root / "models") == []  # no model, no scratch copy
    assert "models/mlp.keras: no space left on the device (" in line, line
    # The finished run's summary (the kept epoch, its scores) is written only after the model; the
    # live one of the failed run gives way to the last successful run's, as dvc.lock records it,
    # and the line says what puts that run's model back.
    assert summary.read_bytes() == recorded
    assert line.endswith("; `dvc checkout train-mlp` puts back the last run's models/mlp.keras"), line


def test_evaluate_writes_nothing_unless_it_can_write_everything(project):
    kept = ("plots/evaluate/mlp_confusion.csv", "plots/evaluate/cnn_confusion.csv", "metrics/evaluate.json")
    before = _mtimes(project.root, *kept)
    with full_disk(project.root / "data/predictions", "16k"):
        line = _one_error_line(project.run("python", "-m", "stages.evaluate", check=False))
    assert "data/predictions/test.npz: no space left on the device (" in line and "it needs" in line, line
    assert _mtimes(project.root, *kept) == before
    assert not [p for p in (project.root / "plots/evaluate").iterdir() if ".tmp" in p.name]
