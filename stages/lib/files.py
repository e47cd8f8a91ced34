"""Files written all or nothing (a temp file renamed into place), and the JSON and array files read back."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib.stage import StageError, disk_full_message, display_path, is_disk_full

_UMASK = os.umask(0)
os.umask(_UMASK)


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


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """A compressed .npz, in memory (for write_all)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


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
