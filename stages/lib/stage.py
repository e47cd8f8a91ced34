"""How a stage runs and fails: its entry point, its log line, and the one-line errors a user acts on.

A stage's main runs under `run_main`: logging in LOG_FORMAT, a StageError (or a full disk) as one
line on stderr and exit 1, SIGTERM unwinding like Ctrl-C. `error_cause` reads that line back out
of a stage's output (the flow shows it as the cause of a failed stage).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"
# An ERROR line in LOG_FORMAT with DATE_FORMAT, e.g. "12:00:01 ERROR stages.train_cnn: <cause>".
_ERROR_LINE = re.compile(r"^\d\d:\d\d:\d\d ERROR [\w.-]+: (?P<cause>.+)$")


class StageError(Exception):
    """A failure the user can act on; its message is printed as one line, without a traceback."""


def error_cause(line: str) -> str | None:
    """The message of a stage's own ERROR line (as run_main logs it), or None for any other line."""
    match = _ERROR_LINE.match(line.strip())
    return match["cause"] if match else None


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or EDQUOT, also as libraries word it without an errno (h5py, TensorFlow)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def disk_full_message(path: Path, needed: int | None = None) -> str:
    """One line: the file being written, the free space there, what it needs when known."""
    directory = next((d for d in (path.parent, *path.parents) if d.exists()), Path("/"))
    free = shutil.disk_usage(directory).free
    need = f"; it needs {_size(needed)}" if needed else ""
    return f"{display_path(path)}: no space left on the device ({_size(free)} free in {display_path(directory)}" \
           f"{need}); free some space and rerun"  # fmt: skip


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def configure_logging(level: str | int | None = None) -> None:
    """Log lines in LOG_FORMAT, at FMNIST_LOG_LEVEL (default INFO) unless `level` is given."""
    logging.basicConfig(
        level=level or os.environ.get("FMNIST_LOG_LEVEL", "INFO"), format=LOG_FORMAT, datefmt=DATE_FORMAT
    )


def run_main(main: Callable[..., None], *args: Any) -> None:
    """Run a stage's main (with `args`): configure logging, turn a StageError into one line on
    stderr and exit 1."""
    configure_logging()
    # SIGTERM (a scheduler or `kill`) unwinds like Ctrl-C, so temp files are removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    logger = logging.getLogger(main.__module__)
    stage = _stage_name()
    try:
        main(*args)
    except StageError as exc:
        logger.error("%s%s", exc, _outputs_back(stage, logger))
        sys.exit(1)
    except Exception as exc:
        if not is_disk_full(exc):
            _outputs_back(stage, logger)
            raise
        # Outside an atomic write (a checkpoint, a library's own file): the file it names, if any.
        cause = disk_full_message(Path(getattr(exc, "filename", None) or Path.cwd() / "?"))
        logger.error("%s%s", cause, _outputs_back(stage, logger))
        sys.exit(1)
    except KeyboardInterrupt:  # stopped, not failed: its checkpoint and logs are where the next run resumes
        logger.error("interrupted: nothing was written as finished; rerun the stage to continue")
        sys.exit(130)
    if stage:
        from stages.lib import last_run

        last_run.keep(stage)


def _stage_name() -> str | None:
    """The dvc.yaml stage this process is (`python -m stages.train_cnn` is train-cnn), or None."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    package, _, name = (spec.name if spec else "").partition(".")
    return name.replace("_", "-") if package == "stages" and name and "." not in name else None


def _outputs_back(stage: str | None, logger: logging.Logger) -> str:
    """After a failed run: its uncached outputs put back as the last successful run left them (DVC
    deleted them before the run and keeps no copy); what it says of the cached ones DVC deleted,
    to go at the end of the error line."""
    if not stage:
        return ""
    from stages.lib import last_run

    try:
        back = last_run.put_back(stage)
        missing = last_run.missing_cached(stage)
    except (OSError, KeyError, ValueError):  # no dvc.yaml entry or lock to go by: nothing to put back
        return ""
    if back:
        logger.info("put back as the last run left them: %s", ", ".join(back))
    return f"; `dvc checkout {stage}` puts back the last run's {', '.join(missing)}" if missing else ""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
