"""Atomic writes, array files and the entry point shared by every stage's main."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


class StageError(Exception):
    """A failure the user can act on; its message is printed as one line, without a traceback."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    The temp name keeps the suffix, because some writers (Keras, numpy) choose the format by it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result should look like any file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StageError(f"{display_path(path)} is missing: run `dvc repro` to build it") from None
    except json.JSONDecodeError as exc:
        raise StageError(f"{display_path(path)} is not valid JSON ({exc}): rebuild it with `dvc repro -f`") from None


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write a compressed .npz atomically."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def load_arrays(path: Path, keys: tuple[str, ...] = ("x", "y")) -> tuple[np.ndarray, ...]:
    """Read the named arrays of an .npz written by `save_arrays`, never unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise StageError(f"{display_path(path)} lacks arrays {missing}: rebuild it with `dvc repro -f`")
            return tuple(data[k] for k in keys)
    except FileNotFoundError:
        raise StageError(f"{display_path(path)} is missing: run `dvc repro` (or `dvc checkout`) to build it") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise StageError(
            f"{display_path(path)} is unreadable ({exc}): restore it with "
            f"`dvc checkout --force {display_path(path)}` or rebuild it with `dvc repro -f`"
        ) from None


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_main(main: Callable[[], None]) -> None:
    """Run a stage's main: configure logging, turn a StageError into one line on stderr and exit 1."""
    logging.basicConfig(
        level=os.environ.get("FMNIST_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # SIGTERM (a scheduler or `kill`) unwinds like Ctrl-C, so temp files are removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    logger = logging.getLogger(main.__module__)
    try:
        main()
    except StageError as exc:
        logger.error("%s", exc)
        sys.exit(1)
    except KeyboardInterrupt:
        logger.error("interrupted: nothing was written as finished; rerun the stage to continue")
        sys.exit(130)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
