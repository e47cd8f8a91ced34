"""The code passes the linter and formatter configured in pyproject.toml."""

import subprocess
import sys

from tests.helpers import PROJECT

CODE = ["stages", "flows", "tests", "bench"]


def test_ruff_finds_nothing():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", *CODE], cwd=PROJECT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_format_would_change_nothing():
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *CODE], cwd=PROJECT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
