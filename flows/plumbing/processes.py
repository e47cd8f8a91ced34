"""The processes a run starts, owned by it: stopped when it stops, gone when it dies.

- `spawn`: a child in a process group of its own (so a terminal's Ctrl-C reaches the run, which
  passes it on once, in order) that the kernel sends SIGTERM if the run dies without cleaning up
  (SIGKILL, the OOM killer): Linux's PR_SET_PDEATHSIG.
- `stop_all`: what a stopping run does with the children it spawned.
- `supervise`: `fmnist-flow` runs its work in a child and outlives it: it passes signals on, and
  when the child is gone, for whatever reason, ends whatever the child left running (the embedded
  Prefect server, a stage).
- `run_tool`: a short command (dvc, git) run to its end, its failure one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

_lock = threading.Lock()
_groups: set[int] = set()  # process groups of the running children (each led by the child)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends (the run died)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@contextlib.contextmanager
def spawn(args: list[str], **kwargs: Any):
    """`subprocess.Popen(args, **kwargs)` as a child the run owns (see the module's docstring)."""
    proc = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)  # noqa: PLW1509
    with _lock:
        _groups.add(proc.pid)
    try:
        with proc:
            yield proc
    finally:
        with _lock:
            _groups.discard(proc.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_all(grace: float = 30.0) -> None:
    """Interrupt every running child's process group, and kill what is left after `grace` seconds.

    SIGINT, whatever stopped the run: DVC then ends cleanly (its locks released, nothing recorded
    in dvc.lock), and a stage treats it as it treats SIGTERM (stages/lib/stage.py: nothing written as
    finished, the checkpoint kept for the next run to resume from).
    """
    with _lock:
        groups = list(_groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.2)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@dataclass(frozen=True)
class Stop:
    """How `supervise` passes a stop (SIGINT, SIGTERM, SIGHUP) on to its child: as `signal` (None:
    as itself), then killing it with all it started if it has not ended `within` seconds later
    (None: waiting as long as it takes)."""

    signal: int | None = None
    within: float | None = None


def _default_sigint() -> None:
    """In the child, before exec: SIGINT acted on, as Ctrl-C is, where a shell's background job
    would pass it on ignored. Only its supervisor signals it (it has a session of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def supervise(argv: list[str], env: dict[str, str], stop: Stop = Stop()) -> int:
    """Run `argv` as a child, pass SIGINT, SIGTERM and SIGHUP on to it as `stop` says, and when it
    has ended, end every process it left behind (they are re-parented here); return its exit code."""
    if _prctl is not None:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # No death signal for this child: on a SIGTERM it would start a graceful stop (a sweep's would
    # cancel its points), where a killed supervisor means "end now" (end_with_supervisor).
    child = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_default_sigint)  # noqa: PLW1509

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, stop.signal or signum)
        if stop.within is not None:
            timer = threading.Timer(stop.within, _kill_group, (child.pid,))
            timer.daemon = True  # no wait at exit for a child that ended in time
            timer.start()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:  # reap orphans as they come; end when the child itself has ended
        pid, status = os.waitpid(-1, 0)
        if pid == child.pid:
            code = os.waitstatus_to_exitcode(status)
            break
    child.returncode = code  # waited for above
    _end_descendants()
    return code if code >= 0 else 128 - code


def _kill_group(pgid: int) -> None:
    """SIGKILL to the process group of a child that outstayed `supervise`'s `Stop.within`, if left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def end_with_supervisor(supervisor: int, poll: float = 0.2) -> None:
    """In `supervise`'s child: should the supervisor (pid `supervisor`) die without passing
    anything on (SIGKILL, a closed laptop), end at once, and everything this process started with
    it (the embedded Prefect server, DVC, the stages: a stage resumes from its checkpoint, as after
    any kill -9). Not a graceful stop, which a busy machine can take many seconds over, and which
    for a sweep would cancel the points that are to go on without it; a supervisor gone before
    this is called is noticed at once."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(poll)
        _end_descendants(grace=0)
        os._exit(128 + signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-supervisor", daemon=True).start()


def _end_descendants(grace: float = 10.0) -> None:
    import psutil

    left = psutil.Process().children(recursive=True)
    if grace:
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, left = psutil.wait_procs(left, timeout=grace)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()


class ToolError(RuntimeError):
    """A command (dvc, git) failed; the message's first line says what and why."""


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment's binaries first on PATH (DVC runs each stage as `python -m stages.X`),
    unbuffered output, no DVC analytics."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "DVC_NO_ANALYTICS": "1",
        **(extra or {}),
    }


def run_tool(
    cwd: Path, args: list[str], *, check: bool = True, cause: Callable[[list[str]], str] | None = None,
    error: type[ToolError] = ToolError,
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `args` in `cwd` and capture its output; on failure raise `error` naming the command and
    `cause(output lines)` (default: the last line)."""
    proc = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if check and proc.returncode:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = (cause(lines) if cause else lines[-1].strip() if lines else "") or f"exited {proc.returncode}"
        raise error(f"{' '.join(args[:3])} failed: {why}")
    return proc
