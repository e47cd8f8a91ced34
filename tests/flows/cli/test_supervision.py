"""Stopping a flow run stops its stages: SIGINT, SIGTERM and SIGKILL to `fmnist-flow run`, and a
Prefect cancellation of a deployment run. Each ends within seconds, leaves no process of the
run behind and keeps the checkpoint; after kill -9 and after a cancellation the next `dvc repro`
resumes and records the stage (resuming after the other signals is tests/reliability/test_interrupted_training.py's).
What the last line says and the exit code are decided without a process, in milliseconds."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time

import httpx
import psutil
import pytest

from flows.cli import supervision
from tests.flows.servers import stop
from tests.helpers import Project, wait_for

SLOW = pytest.mark.slow(minutes=10)  # the tests of a real flow run; the last line's are not

EPOCHS = 6
# About a second an epoch on the tiny data (as in test_interrupted_training.py).
SLOW_ENOUGH = {"epochs": EPOCHS, "patience": EPOCHS, "filters": [16, 32], "dense_units": 64}


def _as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a suite started with `&` ignores SIGINT otherwise


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.cmdline())[:120])
        except psutil.NoSuchProcess:
            pass
    return left


def _in(proc: psutil.Process, project: Project) -> bool:
    try:
        return proc.cwd() == str(project.root)
    except psutil.Error:
        return False


def _stages_of(project: Project) -> list[psutil.Process]:
    """The train-cnn stage processes running in `project` (other tests' processes come and go, some
    of them zombies: whatever cannot be read is not one of these)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if "stages.train_cnn" in " ".join(proc.cmdline()) and _in(proc, project):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _resumes_and_records(project: Project) -> None:
    state = json.loads((project.root / "checkpoints/train_cnn/state.json").read_text())
    assert 2 <= state["epoch"] < EPOCHS
    proc = project.run("dvc", "repro", "train-cnn")
    assert f"resuming after epoch {state['epoch']}" in proc.stdout + proc.stderr
    assert "up to date" in project.run("dvc", "status", "train-cnn").stdout


@pytest.fixture
def busy_machine():
    """`busy()` keeps a core busy beside the run (whose training takes the other), as a sweep training
    on the same machine would, until the test ends or `busy(False)`: from just before the moment
    that matters, so that the burner does not slow the rest of the suite for minutes."""
    burners: list[subprocess.Popen] = []

    def busy(on: bool = True) -> None:
        if on:
            burners.append(subprocess.Popen(["python", "-c", "while True: pass"]))
            return
        while burners:
            burner = burners.pop()
            burner.kill()
            burner.wait()

    try:
        yield busy
    finally:
        busy(False)


@SLOW
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_the_flow_stops_its_stages(project, embedded_prefect_env, sig, request):
    busy = request.getfixturevalue("busy_machine") if sig == signal.SIGKILL else None
    project.set_params(train_cnn=SLOW_ENOUGH)
    flow = subprocess.Popen(
        ["python", "-m", "flows", "run", "--target", "train-cnn"], cwd=project.root, env=embedded_prefect_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=_as_in_a_terminal,
    )  # fmt: skip
    output, tree = [], []
    for line in flow.stdout:
        output.append(line)
        if busy and "checkpoint saved after epoch 1" in line:
            busy()  # busy from an epoch before the kill to the check that nothing is left
        if "checkpoint saved after epoch 2" in line:
            tree = _tree(flow.pid)  # the run's processes: itself, its work, the Prefect server, DVC, the stage
            assert any("stages.train_cnn" in " ".join(p.cmdline()) for p in tree), tree
            # A terminal's Ctrl-C goes to the foreground process group; kill and kill -9 to the process.
            os.killpg(flow.pid, sig) if sig == signal.SIGINT else os.kill(flow.pid, sig)
            stopped = time.monotonic()
            break
    output.append(flow.stdout.read())
    flow.wait(60)
    text = "".join(output)
    assert tree, text
    # kill -9 leaves nothing alive 10 s later, even on a busy machine; a signal it can act on lets
    # the stage stop at its next step.
    limit = 10 if sig == signal.SIGKILL else 20
    try:
        wait_for(lambda: not _alive(tree), limit, "nothing of the run alive", poll=0.2)
    except AssertionError:
        raise AssertionError((_alive(tree), text[-3000:])) from None
    assert time.monotonic() - stopped < 30
    if busy:
        busy(False)
    if sig != signal.SIGKILL:
        assert flow.returncode == 128 + sig, text[-3000:]
        last = text.strip().splitlines()[-1]
        assert "interrupted: train-cnn stopped before finishing" in last and "resumes" in last, text[-3000:]
    assert not (project.root / "models/cnn.keras").exists()
    if sig == signal.SIGKILL:
        # Killed, the run's processes are zombies until the machine's init reaps them, and DVC takes
        # a zombie's PID for a live holder of its lock: the resume starts once they are gone
        # (at once where init reaps at once; some sandboxes' PID 1 takes seconds).
        _, unreaped = psutil.wait_procs(tree, timeout=60)
        assert not unreaped, [p.pid for p in unreaped]
        _resumes_and_records(project)
    else:
        assert 2 <= json.loads((project.root / "checkpoints/train_cnn/state.json").read_text())["epoch"] < EPOCHS


@SLOW
def test_cancelling_a_deployment_run_stops_its_stages(project, prefect_server, tmp_path):
    project.set_params(train_cnn=SLOW_ENOUGH)
    env = {**prefect_server.env, "PWD": str(project.root)}
    project.run("prefect", "work-pool", "create", "fmnist-process", "--type", "process", "--overwrite", env=env)
    project.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-nightly", env=env)
    out = project.run("prefect", "deployment", "run", "fmnist-pipeline/fmnist-nightly", env=env).stdout
    run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
    worker_log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", "fmnist-process"], cwd=tmp_path, env=env,
        stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    state = project.root / "checkpoints/train_cnn/state.json"

    def set_state(kind: str) -> None:
        httpx.post(f"{prefect_server.api_url}/flow_runs/{run_id}/set_state",
                   json={"state": {"type": kind}, "force": True}, timeout=10).raise_for_status()  # fmt: skip

    def run_state() -> str:
        return prefect_server.flow_runs(id={"any_": [run_id]})[0]["state"]["type"]

    try:
        wait_for(lambda: state.exists() and json.loads(state.read_text())["epoch"] >= 2, 300, "epoch 2 checkpointed",
                 poll=0.5)  # fmt: skip
        stages = _stages_of(project)
        assert stages
        set_state("CANCELLING")  # what the UI's Cancel does
        ended = wait_for(lambda: (s := run_state()) != "CANCELLING" and s, 60, "the cancellation carried out")
        assert ended == "CANCELLED", ended
        wait_for(lambda: not _alive(stages), 30, "the run's stages to end")
    finally:
        stop(worker)
        worker_log.close()
        if run_state() not in ("CANCELLED", "COMPLETED", "FAILED", "CRASHED"):
            set_state("CANCELLED")  # the deployment runs one at a time: free its slot for the other tests
    _resumes_and_records(project)


# --- the last line and the exit code, in milliseconds ---


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("no stage 'trian'\n(the details)"), "run failed: no stage 'trian'"),
        (KeyError(), "run failed: KeyError"),
        (RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."),
         "run failed: Prefect's embedded server did not start within 180s: start a server (`prefect server start`)"),
    ],
)  # fmt: skip
def test_a_failure_is_its_causes_first_line_last_and_exit_1(exc, line, last_line):
    with pytest.raises(SystemExit) as ended:
        supervision.fail("run", exc)
    assert ended.value.code == 1
    assert last_line().startswith(line) and "\n" not in last_line()
    assert logging.getLogger("prefect").level == logging.WARNING  # nothing of Prefect's after it


def test_a_stop_says_what_the_flow_noted_on_its_way_out_and_exits_128_plus_the_signal(last_line):
    crashed = RuntimeError("the flow crashed")
    crashed.add_note("interrupted: train-cnn stopped before finishing")
    try:
        try:
            raise crashed
        except RuntimeError:
            raise supervision.Stopped(signal.SIGTERM) from None
    except supervision.Stopped as stop_:
        with pytest.raises(SystemExit) as ended:
            supervision.stopped(stop_)
    assert ended.value.code == 128 + signal.SIGTERM
    assert last_line() == "interrupted: train-cnn stopped before finishing"


def test_ctrl_c_before_any_stage_says_so_and_exits_130(last_line):
    with pytest.raises(SystemExit) as ended:
        supervision.stopped(KeyboardInterrupt())
    assert ended.value.code == 130
    assert last_line() == "stopped (SIGINT) before any stage was running"
