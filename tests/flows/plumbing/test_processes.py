"""The processes a run starts: stopped with it, ended when it dies, and a tool's failure in one line.
Real processes, each test a second or two."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from flows.plumbing import processes
from tests.helpers import PROJECT, wait_for


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_stop_all_interrupts_each_child_and_kills_what_ignores_it(tmp_path):
    polite = tmp_path / "polite"
    with processes.spawn(_python(f"""
            import pathlib, signal, sys, time
            def stop(*_):
                pathlib.Path({str(polite)!r}).write_text("interrupted")
                sys.exit(0)
            signal.signal(signal.SIGINT, stop)
            print("ready", flush=True)
            time.sleep(60)
            """), stdout=subprocess.PIPE, text=True) as first, processes.spawn(_python("""
            import signal, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(60)
            """), stdout=subprocess.PIPE, text=True) as stubborn:  # fmt: skip
        assert first.stdout.readline().strip() == stubborn.stdout.readline().strip() == "ready"
        processes.stop_all(grace=1.0)
        assert first.wait(5) == 0 and polite.read_text() == "interrupted"  # SIGINT: its own clean stop
        assert stubborn.wait(5) == -signal.SIGKILL  # ignored SIGINT: killed once the grace is over


def test_a_child_ends_when_the_run_that_spawned_it_is_killed(tmp_path):
    run = subprocess.Popen(_python("""
        import time
        from flows.plumbing import processes
        with processes.spawn(["sleep", "60"]) as child:
            print(child.pid, flush=True)
            time.sleep(60)
        """), cwd=PROJECT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    child = int(run.stdout.readline())
    run.kill()  # no cleanup: the kernel's death signal is what ends the child
    run.wait(5)
    wait_for(lambda: _gone(child), 10, "the orphaned child to end")


def test_supervise_returns_the_childs_code_and_ends_what_it_left(tmp_path):
    left = tmp_path / "left.pid"
    child = f"""
        import subprocess, sys, pathlib
        orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
        pathlib.Path({str(left)!r}).write_text(str(orphan.pid))
        sys.exit(3)
        """
    supervisor = subprocess.run(_python(f"""
        import os, sys
        from flows.plumbing import processes
        sys.exit(processes.supervise({_python(child)!r}, dict(os.environ)))
        """), cwd=PROJECT, timeout=60)  # fmt: skip
    assert supervisor.returncode == 3
    assert _gone(int(left.read_text()))  # re-parented to the supervisor, and ended by it


# Each child says it is ready and then waits for a signal: one that ignores SIGTERM, one that dies of
# whatever reaches it (SIGINT as Python's KeyboardInterrupt).
STUBBORN = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); signal.pause()"
POLITE = "import signal; print('ready', flush=True); signal.pause()"


@pytest.mark.parametrize(
    ("child", "stop", "code", "within"),
    [
        (STUBBORN, "Stop(within=1.0)", 128 + signal.SIGKILL, (1.0, 10)),  # killed once Stop.within is over
        (POLITE, "Stop(within=30.0)", 128 + signal.SIGTERM, (0, 10)),  # ended at once: the 30 s are not waited for
        (POLITE, "Stop(signal=signal.SIGINT)", 128 + signal.SIGINT, (0, 10)),  # SIGTERM passed on as SIGINT
    ],
    ids=["outstays-it", "ends-in-time", "passed-on-as-sigint"],
)
def test_supervise_passes_a_stop_on_as_told_and_kills_a_child_that_outstays_it(child, stop, code, within):
    # Started with SIGINT ignored, as a shell's background job is: the child still acts on it.
    supervisor = subprocess.Popen(_python(f"""
        import os, signal, sys
        from flows.plumbing import processes
        from flows.plumbing.processes import Stop
        sys.exit(processes.supervise({[sys.executable, "-c", child]!r}, dict(os.environ), {stop}))
        """), cwd=PROJECT, stdout=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip  # noqa: PLW1509
    assert supervisor.stdout.readline().strip() == "ready"
    supervisor.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert supervisor.wait(20) == code
    assert within[0] <= time.monotonic() - started < within[1]


def test_a_failed_tool_is_one_line_naming_the_command_and_its_last_words(tmp_path):
    with pytest.raises(processes.ToolError) as failed:
        processes.run_tool(tmp_path, ["git", "rev-parse", "--verify", "no-such-ref"])
    assert str(failed.value).startswith("git rev-parse --verify failed: ")
    assert "\n" not in str(failed.value)
    with pytest.raises(processes.ToolError, match="failed: the first line"):
        processes.run_tool(tmp_path, ["sh", "-c", "echo 'the first line' >&2; echo more >&2; exit 2"],
                           cause=lambda lines: lines[0])  # fmt: skip
    assert processes.run_tool(tmp_path, ["sh", "-c", "exit 4"], check=False).returncode == 4


def test_tools_run_with_this_environments_binaries_first():
    path = processes.tool_env({"EXTRA": "1"})
    assert path["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert path["EXTRA"] == "1" and path["DVC_NO_ANALYTICS"] == "1"
