"""Talking to DVC through its command line: the stage graph, status, repro with its output streamed.

DVC's `Repo` class is internal; its command line and `dvc.api` (which flows/compare and
flows/sweep/earlier.py read revisions and experiments through) are its stable interfaces, so
everything here runs `dvc ...` in a project directory, with this environment's `python` first on
PATH (DVC runs each stage as `python -m stages.X`). The DVC remote has a module of its own
(flows/plumbing/remote.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import re
import subprocess
import time
from collections.abc import Callable
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from flows.plumbing import processes
from stages.lib.stage import error_cause

_DVC_ERROR = re.compile(r"^ERROR: (?P<cause>.+)$")
RWLOCK = Path(".dvc/tmp/rwlock")


class DvcError(processes.ToolError):
    """A dvc command failed; the message's first line says what and why."""


def cause(lines: list[str]) -> str:
    """The line that says why a dvc command failed: a stage's own error line, else DVC's `ERROR:`
    line, else the last line."""
    for line in reversed(lines):
        if (found := error_cause(line)) is not None:
            return found
    for line in reversed(lines):
        if match := _DVC_ERROR.match(line.strip()):
            return match["cause"]
    return lines[-1].strip() if lines else ""


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`dvc ARGS` in `root`, captured; on failure DvcError with DVC's (or the stage's) own error line."""
    _heal_before(root)
    return processes.run_tool(root, ["dvc", *args], check=check, cause=cause, error=DvcError)


def dvc_streamed(
    root: Path,
    args: list[str],
    what: str,
    logger: Any,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run `dvc ARGS` (with `env` added to the environment), every line it prints going to
    `logger` as it comes.

    On failure raise DvcError("WHAT failed: CAUSE"), CAUSE being the line that says why (a stage's
    own error line when a stage failed).
    """
    tail: list[str] = []
    _heal_before(root)
    with processes.spawn(
        ["dvc", *args], cwd=root, env=processes.tool_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1,
    ) as proc:  # fmt: skip
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


def heal_rwlock(root: Path, timeout: float = 10.0) -> bool:
    """Remove DVC's lock table `.dvc/tmp/rwlock` if it is unreadable; return whether it was.

    DVC rewrites that file in place. A DVC process killed while writing it (kill -9, a stop's last
    resort, a machine's OOM killer) leaves it empty or cut short, and from then on every DVC command
    in the checkout fails with "Unable to read RWLock-file". A table that cannot be read holds no
    lock anyone can honour: removing it is what a user would do, and DVC starts a new one. Done
    under DVC's own guard of the table (`rwlock.lock`, the flock DVC takes for every edit), so a
    DVC process in the middle of writing it is waited for, not taken for a broken file.
    """
    table = root / RWLOCK
    if not table.exists():
        return False
    with open(table.with_name("rwlock.lock"), "a+") as guard:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(guard.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False  # held all along: a live DVC is using the table
                time.sleep(0.05)
        try:
            json.loads(table.read_text(encoding="utf-8"))
            return False
        except FileNotFoundError:
            return False
        except ValueError:  # JSON or UTF-8 cut short
            table.unlink()
            return True
        finally:
            fcntl.flock(guard.fileno(), fcntl.LOCK_UN)


def _heal_before(root: Path) -> None:
    """Before DVC runs in `root`: its lock table, if a DVC killed earlier left it unreadable (a
    stopped run, a worker's lost machine), would fail every command; removed, with a warning."""
    if heal_rwlock(root):
        logging.getLogger("fmnist-flow").warning("%s was left unreadable by a killed DVC: removed", RWLOCK)


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
