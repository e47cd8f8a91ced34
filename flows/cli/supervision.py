"""What every `fmnist-flow` command runs under: a supervisor process it outlives, signals turned
into an orderly stop, and its last line the cause with an exit code that says how it ended.

`fmnist-flow` runs its work in a child that it outlives (flows/plumbing/processes.py `supervise`):
stopping it (Ctrl-C, SIGTERM, even SIGKILL) stops the run's stages, and nothing the run started
stays running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable

from flows.plumbing import dvc, processes
from stages.lib.stage import LOG_FORMAT, StageError
from tools.checkout import project_root

logger = logging.getLogger("fmnist-flow")
SUPERVISED = "FMNIST_FLOW_SUPERVISED"
# Prefect's embedded server migrates its database on a first start, which takes a busy 2-core
# machine longer than the 20 s Prefect waits by default.
EMBEDDED_SERVER_WAIT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def supervised(argv: list[str], work: Callable[[], None], stop: processes.Stop) -> None:
    """Run `work` in a child process of `fmnist-flow ARGV` that this one supervises, which passes a
    stop on to it as `stop` says; in that child, run it with signals turned into an orderly stop."""
    if not os.environ.get(SUPERVISED, "").isdigit():
        env = {**os.environ, SUPERVISED: str(os.getpid())}  # the child watches this process
        code = processes.supervise([sys.executable, "-m", "flows", *argv], env, stop)
        # A DVC among what the child left, had it to be killed, may have left its lock table cut
        # short: repaired here, quietly (the last line stays the run's own).
        with contextlib.suppress(StageError, OSError):
            dvc.heal_rwlock(project_root())
        sys.exit(code)
    # SIGKILL to `fmnist-flow`: this and all it started end at once (a sweep's points, on workers, go on)
    processes.end_with_supervisor(int(os.environ[SUPERVISED]))
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGHUP, _raise_stopped)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request otherwise
    os.environ.setdefault(EMBEDDED_SERVER_WAIT, "180")
    work()


class Stopped(BaseException):
    """SIGTERM (or SIGHUP) outside Prefect's own handling of it: unwinds like Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def quiet_prefect() -> None:
    """Prefect logs as the process exits ("Stopping temporary server"): the cause stays last."""
    logging.getLogger("prefect").setLevel(logging.WARNING)


def fail(what: str, exc: BaseException) -> None:
    """The cause in one line, last: the run log above holds the details. Exits 1."""
    quiet_prefect()
    cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "attempting to connect to ephemeral Prefect API server" in cause:
        cause = (
            f"Prefect's embedded server did not start within {os.environ[EMBEDDED_SERVER_WAIT]}s: start a server "
            f"(`prefect server start`) and set PREFECT_API_URL, or give it longer ({EMBEDDED_SERVER_WAIT})"
        )
    logger.error("%s failed: %s", what, cause)
    sys.exit(1)


def stopped(exc: BaseException) -> None:
    """The run was stopped: say what was interrupted and how a rerun resumes it, last; exit 128+N.

    During a flow Prefect turns SIGTERM into its TerminationSignal, and re-sends the signal to
    the handler it replaced (_raise_stopped) once the flow has crashed: what the flow noted on
    its way out is on that exception, our Stopped's context."""
    notes = [n for e in (exc, exc.__context__) if e is not None for n in getattr(e, "__notes__", [])]
    quiet_prefect()
    signum = signal.Signals(exc.signum if isinstance(exc, Stopped) else getattr(exc, "signal", signal.SIGINT))
    logger.error("%s", notes[-1] if notes else f"stopped ({signum.name}) before any stage was running")
    sys.exit(128 + signum)


def api_gone(message: str) -> None:
    """The Prefect API went away for good during a sweep: one line naming it, and out at once
    (Prefect's exit handlers would go on trying it for minutes, and print their own last line)."""
    logging.disable(logging.CRITICAL)  # the point threads and Prefect's report the dead API too
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "sweep failed: %s", (message,), None)
    handlers = logging.getLogger().handlers
    for handler in handlers:  # held until the exit: a thread already past the check cannot write after us
        handler.acquire()
    for handler in handlers:
        handler.emit(record)
        handler.flush()
    os._exit(1)
