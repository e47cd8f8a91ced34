"""Talking to DVC through its command line (and to the git beside it): the stage graph, status, repro, pull and push.

DVC's Python API is internal; its command line is the stable interface, so everything here runs
`dvc ...` in a project directory, with this environment's `python` first on PATH (DVC runs each
stage as `python -m stages.X`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from flows import processes

# A stage's own error line, as stages/io.py logs it: "12:00:01 ERROR stages.train_cnn: <cause>".
_STAGE_ERROR = re.compile(r"^\d\d:\d\d:\d\d ERROR [\w.]+: (?P<cause>.+)$")
_DVC_ERROR = re.compile(r"^ERROR: (?P<cause>.+)$")


class DvcError(RuntimeError):
    """A dvc command failed; the message's first line says what and why."""


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment's binaries first on PATH, unbuffered output, no DVC analytics."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DVC_NO_ANALYTICS": "1",
        **(extra or {}),
    }


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command (`dvc`, `git`) in `root`; on failure raise DvcError with its own error line."""
    proc = subprocess.run(args, cwd=root, env=tool_env(), capture_output=True, text=True)
    if check and proc.returncode:
        output = (proc.stderr or proc.stdout).strip().splitlines()
        raise DvcError(f"{' '.join(args[:3])} failed: {cause(output) or f'exited {proc.returncode}'}")
    return proc


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(root, "dvc", *args, check=check)


def cause(lines: list[str]) -> str:
    """The line that says why a command failed: a stage's own error line, else DVC's `ERROR:` line,
    else the last line."""
    for pattern in (_STAGE_ERROR, _DVC_ERROR):
        for line in reversed(lines):
            match = pattern.match(line.strip())
            if match:
                return match["cause"]
    return lines[-1].strip() if lines else ""


def dvc_streamed(
    root: Path, args: list[str], what: str, logger: Any, on_line: Callable[[str], None] | None = None
) -> None:
    """Run `dvc ARGS`, every line it prints going to `logger` as it comes.

    On failure raise DvcError("WHAT failed: CAUSE"), CAUSE being the line that says why (a stage's
    own error line when a stage failed).
    """
    tail: list[str] = []
    with processes.spawn(
        ["dvc", *args], cwd=root, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            logger.info("%s", line)
            tail = [*tail[-19:], line]
            if on_line:
                on_line(line)
    if proc.returncode:  # every line is in the log already: the message is the cause alone
        raise DvcError(f"{what} failed: {cause(tail) or f'dvc exited {proc.returncode}'}")


def stage_graph(root: Path) -> dict[str, set[str]]:
    """{stage: its upstream stages}, from DVC's own DAG of dvc.yaml."""
    dot = dvc(root, "dag", "--dot").stdout
    graph: dict[str, set[str]] = {name: set() for name in re.findall(r'^"([^"]+)";$', dot, re.M)}
    for upstream, downstream in re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, re.M):
        graph[downstream].add(upstream)
    return graph


def stage_names(root: Path) -> dict[str, set[str]]:
    """dvc.yaml's stages, without their edges (enough to check a target); no DVC start-up."""
    import yaml

    return {name: set() for name in (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {})}


def changed_stages(root: Path) -> set[str]:
    """Stages that `dvc status` finds changed (deps, params, outs or the stage itself)."""
    return set(json.loads(dvc(root, "status", "--json").stdout or "{}"))


def plan(graph: dict[str, set[str]], targets: list[str] | None) -> list[str]:
    """The stages to reproduce, upstream first: `targets` and everything they depend on."""
    unknown = sorted(set(targets or []) - set(graph))
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; dvc.yaml has {', '.join(graph)}")
    wanted, stack = set(), list(targets or graph)
    while stack:
        stage = stack.pop()
        if stage not in wanted:
            wanted.add(stage)
            stack.extend(graph[stage])
    order = TopologicalSorter({s: graph[s] for s in graph}).static_order()
    return [s for s in order if s in wanted]


def check_remote(root: Path) -> str:
    """The default DVC remote's name; fail before any work when there is none."""
    proc = dvc(root, "remote", "default", check=False)
    if proc.returncode:  # "No default remote set" is printed, with exit code 1
        raise DvcError(
            "no default DVC remote to pull from or push to: add one with "
            "`dvc remote add -d shared /path/to/shared/fmnist-cache` and commit .dvc/config (README: sharing the cache)"
        )
    return proc.stdout.strip()


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
    has no command for this, so it uses DVC's own transfer (dvc is pinned; tested in
    tests/test_shared_cache.py). Returns how many objects were sent.
    """
    import yaml
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    with Repo(str(root)) as repo:
        cache = repo.cache.local
        records = [f for f in Path(repo.stage_cache.cache_dir).rglob("*") if f.is_file()]
        md5s = {out["md5"] for f in records for out in yaml.safe_load(f.read_text()).get("outs", []) if "md5" in out}
        for md5 in [m for m in md5s if m.endswith(".dir") and cache.exists(m)]:  # a directory: its files too
            md5s.update(entry["md5"] for entry in json.loads(Path(cache.oid_to_path(md5)).read_text()))
        present = [HashInfo("md5", md5) for md5 in sorted(md5s) if cache.exists(md5)]
        return len(repo.cloud.push(present).transferred)
