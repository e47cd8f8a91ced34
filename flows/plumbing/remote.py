"""Sharing through the default DVC remote: checking there is one, pulling, and pushing everything
another machine needs to restore a run instead of repeating it.

`dvc pull` and `dvc push` are DVC's CLI. What the CLI cannot do (push the outputs of run-cache
records) reads the cache through its documented layout and pushes through DVC's internal Python
objects in one function, `push_objects`, which tests/flows/plumbing/test_remote.py checks against
the pinned DVC.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flows.plumbing.dvc import DvcError, dvc, dvc_streamed


def check_remote(root: Path, *, for_workers: bool = False) -> str:
    """The default DVC remote's name; DvcError saying how to add one when there is none.

    `for_workers`: the remote must be in the committed .dvc/config, which is all that a worker's
    fresh clone sees (a remote in .dvc/config.local is this machine's alone).
    """
    proc = dvc(root, "remote", "default", *(["--project"] if for_workers else []), check=False)
    if proc.returncode == 0:  # "No default remote set" is printed, with exit code 1
        return proc.stdout.strip()
    if for_workers:
        raise DvcError(
            "no default DVC remote in .dvc/config, so workers could not share results: add one with "
            "`dvc remote add -d shared URL` (a place every worker reaches), then commit and push .dvc/config"
        )
    raise DvcError(
        "no default DVC remote to pull from or push to: add one with "
        "`dvc remote add -d shared /path/to/shared/fmnist-cache` and commit .dvc/config (docs/sharing.md)"
    )


def pull(root: Path, logger: Any) -> None:
    """The outputs dvc.lock names and the run-cache, from the default remote. `--allow-missing`:
    an empty remote (the first run anywhere) is not an error."""
    dvc_streamed(root, ["pull", "--run-cache", "--allow-missing"], "dvc pull", logger)


def share(root: Path, logger: Any) -> None:
    """`dvc push --run-cache`, then the outputs its run records name that it leaves behind."""
    dvc_streamed(root, ["push", "--run-cache"], "dvc push", logger)
    logger.info("%d more outputs of recorded runs pushed", push_run_outputs(root))


def push_run_outputs(root: Path) -> int:
    """Push to the default remote every output that a run in the local run-cache recorded.

    `dvc push --run-cache` (DVC 3.67) sends the run records, but of their outputs only those the
    workspace tracks now, and never a `cache: false` one (metrics, plot data): another machine
    then finds the record and still recomputes the stage, its metrics being nowhere. DVC's CLI
    has no command for this. Returns how many objects were sent.

    The records and objects are read where DVC documents them (`dvc cache dir`, then `runs/` and
    `files/md5/` in it: dvc.org/doc/user-guide/project-structure/internal-files).
    """
    import yaml

    cache = root / dvc(root, "cache", "dir").stdout.strip()
    records = [f for f in (cache / "runs").rglob("*") if f.is_file()]
    md5s = {out["md5"] for f in records for out in yaml.safe_load(f.read_text()).get("outs", []) if "md5" in out}
    for md5 in [m for m in md5s if m.endswith(".dir") and _object(cache, m).exists()]:  # a directory: its files too
        md5s.update(entry["md5"] for entry in json.loads(_object(cache, md5).read_text()))
    return push_objects(root, sorted(md5 for md5 in md5s if _object(cache, md5).exists()))


def _object(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def push_objects(root: Path, md5s: list[str]) -> int:
    """Push these objects of the local cache (by md5) to the default DVC remote; how many were sent.

    Nothing public does this: the CLI pushes only what a dvc.lock or .dvc file names, and dvc.api
    pushes nothing. So DVC's internals are used here, and nowhere else: `dvc.repo.Repo`, its
    `cloud.push` of `dvc_data`'s `HashInfo`s (what `dvc push` itself calls, DVC 3.67). A DVC that
    changed them fails here with DvcError naming them.
    """
    try:
        from dvc.repo import Repo
        from dvc_data.hashfile.hash_info import HashInfo

        with Repo(str(root)) as repo:
            return len(repo.cloud.push([HashInfo("md5", md5) for md5 in md5s]).transferred)
    except (ImportError, AttributeError, TypeError) as exc:
        from dvc import __version__

        raise DvcError(
            f"DVC {__version__} no longer pushes objects as 3.67 did (Repo.cloud.push of dvc_data HashInfo: "
            f"{exc}): flows/plumbing/remote.py push_objects needs updating to it"
        ) from exc
