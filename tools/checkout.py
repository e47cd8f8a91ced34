"""The checkout a command acts on: the one the user stands in, found as git and DVC find theirs.

Not the copy the package was installed from (`pip install .` puts it in site-packages, and an
editable install points at one clone while the user works in another). No DVC stage imports this:
a stage runs in its checkout, where `stages.lib.paths` points.
"""

from __future__ import annotations

from pathlib import Path

from stages.lib.stage import StageError


def project_root(start: Path | None = None) -> Path:
    """The nearest directory upward from `start` (default: the working directory) holding dvc.yaml."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if (directory / "dvc.yaml").is_file():
            return directory
    raise StageError(f"{start} is not inside a checkout of the pipeline (no dvc.yaml here or above): cd into one")
