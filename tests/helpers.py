"""A real git + DVC repository holding a copy of the project, for the pipeline tests."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEBIAN_DATA = Path("/usr/share/datasets/fashion-mnist")
BIN = Path(sys.executable).parent


# TensorFlow's C++ start-up lines on a CPU-only machine (stages.lib.tf_runtime drops them).
TF_STARTUP_MARKERS = (
    "absl::InitializeLog",
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "cpu_feature_guard",
    "rebuild TensorFlow with the appropriate",
    "failed call to cuInit",
)


def tf_startup_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(marker in line for marker in TF_STARTUP_MARKERS)]


# A line of TensorFlow's C++ log: absl's format (severity and date, time, thread, file:line]) or the
# one TensorFlow used before 2.16 (date and time: severity file:line]).
TF_CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] |^[\d-]+ [\d:.]+: [IWEF] [\w./-]+:\d+\] ")


def tf_cpp_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if TF_CPP_LOG_LINE.match(line)]


def tool_env() -> dict[str, str]:
    """Run dvc, git and the stages' `python` from this interpreter's environment, quietly."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }  # fmt: skip


def require_real_data() -> Path:
    """The Debian dataset directory; its absence is a setup error, not a reason to skip."""
    if not (DEBIAN_DATA / "train-images-idx3-ubyte.gz").is_file():
        raise RuntimeError(f"{DEBIAN_DATA} is missing: run `./run setup` (installs dataset-fashion-mnist)")
    return DEBIAN_DATA


class Project:
    """A copy of the project (stages, flows, tools, dvc.yaml, params.yaml, prefect.yaml and DVC's
    plot templates) in its own git + DVC repo."""

    def __init__(self, root: Path):
        self.root = root
        for package in ("stages", "flows", "tools"):
            shutil.copytree(PROJECT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dvc.yaml", "params.yaml", "prefect.yaml", ".gitignore", ".dvcignore"):
            shutil.copy(PROJECT / name, root / name)
        self.run("git", "init", "-q", "-b", "main")
        self.run("dvc", "init", "-q")
        shutil.copytree(PROJECT / ".dvc" / "plots", root / ".dvc" / "plots")
        self.run("dvc", "config", "core.autostage", "true")

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(args, cwd=self.root, env={**tool_env(), **(env or {})}, capture_output=True, text=True)
        if check and proc.returncode:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def set_params(self, **sections: dict[str, Any]) -> None:
        document = self.params()
        for section, values in sections.items():
            document[section].update(values)
        (self.root / "params.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def repro(self, *args: str) -> list[str]:
        """`dvc repro`; returns the stages that ran, in order."""
        out = self.run("dvc", "repro", *args).stdout
        return re.findall(r"Running stage '([\w-]+)'", out)

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)

    @classmethod
    def existing(cls, root: Path) -> Project:
        """The project already in `root` (a copy or a clone), without setting anything up."""
        project = cls.__new__(cls)
        project.root = root
        return project

    def copy_to(self, root: Path) -> Project:
        """A copy of this project, its git history, DVC cache and outputs included."""
        shutil.copytree(self.root, root, symlinks=True)
        return Project.existing(root)

    def read_json(self, path: str) -> Any:
        return json.loads((self.root / path).read_text())


# All that `dvc plots show` and `dvc plots diff` draw: the stages' plots in dvc.yaml, by file, with
# their titles and templates.
CURATED_PLOTS = {
    "plots/report/accuracy.csv": ("Accuracy per epoch", "learning_curves"),
    "plots/report/loss.csv": ("Loss per epoch", "learning_curves"),
    "plots/evaluate/mlp_confusion.csv": ("MLP confusion matrix (test)", "confusion"),
    "plots/evaluate/cnn_confusion.csv": ("CNN confusion matrix (test)", "confusion"),
}


TINY_PARAMS = {
    "fetch": {"sources": [str(DEBIAN_DATA)]},
    "preprocess": {"train_limit": 2000, "test_limit": 1000, "val_size": 500},
    # No weight average: one epoch of 16 steps would leave it mostly the initial weights. Two
    # convs a block: one epoch of the default's single first conv stays at chance on 1,500 images.
    "train_mlp": {"epochs": 1, "ema": 0.0},
    "train_cnn": {"epochs": 1, "filters": [8, 16], "convs_per_block": 2, "dense_units": 32, "ema": 0.0},
    "report": {"grid_size": 9},
}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 1.0) -> Any:
    """`condition()`'s first truthy result, polled every `poll` seconds for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(poll)
    raise AssertionError(f"no {what} within {timeout:.0f}s")
