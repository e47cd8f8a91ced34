"""Atomic writes, array files and the entry point shared by every stage's main."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


class StageError(Exception):
    """A failure the user can act on; its message is printed as one line, without a traceback."""


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


@contextmanager
def atomic_path(path: Path, needed: int | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    The temp name keeps the suffix, because some writers (Keras, numpy) choose the format by it.
    A full disk becomes a StageError naming `path` and the space (`needed` bytes, when known).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; the result should look like any file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as exc:
        if is_disk_full(exc):
            raise StageError(disk_full_message(path, needed)) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)


def write_all(outputs: dict[Path, bytes]) -> None:
    """Write several files as one: every one to a temp file first, renamed into place only when
    all are written, so a failure (a full disk) leaves the old files, not a mix of old and new."""
    needed = sum(map(len, outputs.values()))
    with ExitStack() as stack:  # each atomic_path renames its file as the stack closes without error
        for path, data in outputs.items():
            stack.enter_context(atomic_path(path, needed)).write_bytes(data)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """A compressed .npz, in memory (for write_all)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json_text(obj))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StageError(f"{display_path(path)} is missing: run `dvc repro` to build it") from None
    except json.JSONDecodeError as exc:
        raise StageError(f"{display_path(path)} is not valid JSON ({exc}): rebuild it with `dvc repro -f`") from None


# The key of a trained model's own entry in its .keras file's metadata.json (see
# stages.training.model_about): its input normalisation and class names.
MODEL_ABOUT_KEY = "fmnist"


def read_model_about(path: Path) -> dict[str, Any] | None:
    """What a trained .keras file says about its inputs and classes, or None if it says nothing."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get(MODEL_ABOUT_KEY)
    except FileNotFoundError:
        raise StageError(f"{display_path(path)} is missing") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        raise StageError(f"{display_path(path)} is not a Keras model file (.keras)") from None


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
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # Outside atomic_path (a checkpoint, a library's own file): the file it names, if any.
        logger.error("%s", disk_full_message(Path(getattr(exc, "filename", None) or Path.cwd() / "?")))
        sys.exit(1)
    except KeyboardInterrupt:
        logger.error("interrupted: nothing was written as finished; rerun the stage to continue")
        sys.exit(130)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
