"""A stage's last successful run's outputs that DVC cannot put back: its `cache: false` outputs
(DVCLive's summaries, metrics, plot data). DVC deletes every output of a stage before it runs the stage
again, and keeps no copy of these, so a run that fails (a refused param, any error, a stop) would
lose them. A copy is kept under checkpoints/last-run/<stage>/ when a run succeeds and put back when
one fails, if dvc.lock still records the run it came from; the training stages read their last
epochs' times from it (stages/lib/eta.py)."""

from __future__ import annotations

import filecmp
import hashlib
import shutil
from pathlib import Path

import yaml

from stages.lib import paths

LAST_RUN_DIR = paths.CHECKPOINTS_DIR / "last-run"


def outputs(stage: str, root: Path = paths.ROOT) -> tuple[list[str], list[str]]:
    """(the `cache: false` outputs, the cached ones) of `stage`, as dvc.yaml lists them."""
    spec = yaml.safe_load((root / paths.PIPELINE.name).read_text())["stages"][stage]
    uncached, cached = [], []
    for kind in ("outs", "metrics", "plots"):
        for entry in spec.get(kind, []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
            (uncached if (options or {}).get("cache", True) is False else cached).append(path)
    return uncached, cached


def kept_copy(stage: str, root: Path = paths.ROOT) -> Path:
    """Where the last successful run of `stage` in the checkout `root` left its uncached outputs."""
    return paths.in_checkout(LAST_RUN_DIR, root) / stage


def keep(stage: str, root: Path = paths.ROOT) -> None:
    """After a successful run: a copy of its uncached outputs, replacing the copy of the run before."""
    uncached, _ = outputs(stage, root)
    target = kept_copy(stage, root)
    fresh = target.with_name(f".{stage}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    for relative in uncached:
        source = root / relative
        if source.is_dir():
            shutil.copytree(source, fresh / relative)
        elif source.is_file():
            (fresh / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, fresh / relative)
    shutil.rmtree(target, ignore_errors=True)
    if fresh.exists():
        fresh.rename(target)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (what dvc.lock records, not security)


def put_back(stage: str, root: Path = paths.ROOT) -> list[str]:
    """After a failed run: the kept uncached outputs back in place of what DVC deleted (and what the
    failed run wrote), if dvc.lock still records the run they came from (each kept file's md5 is the
    one dvc.lock has for it). Returns what was put back."""
    uncached, _ = outputs(stage, root)
    kept = kept_copy(stage, root)
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"][stage]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []
    recorded = {out["path"]: out.get("md5") for out in lock.get("outs", [])}
    present = [relative for relative in uncached if (kept / relative).exists()]
    files = [relative for relative in present if (kept / relative).is_file()]
    if not present or not files or any(_md5(kept / relative) != recorded.get(relative) for relative in files):
        return []  # no copy, or one of another run than dvc.lock records
    for relative in present:
        target = root / relative
        if _same(kept / relative, target):
            continue
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        if (kept / relative).is_dir():
            shutil.copytree(kept / relative, target)
        else:
            shutil.copy2(kept / relative, target)
    return present


def _same(a: Path, b: Path) -> bool:
    """Whether the file or directory `b` holds the same files with the same bytes as `a`."""
    if a.is_file():
        return b.is_file() and filecmp.cmp(a, b, shallow=False)
    if not b.is_dir():
        return False
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def missing_cached(stage: str, root: Path = paths.ROOT) -> list[str]:
    """The stage's cached outputs that are not in the workspace (DVC deleted them before the run)."""
    _, cached = outputs(stage, root)
    return [relative for relative in cached if not (root / relative).exists()]
