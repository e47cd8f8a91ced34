"""`fmnist-flow` failures end with one line naming the cause: argument mistakes before Prefect
starts, a stage's own error, DVC's error on a broken remote (not retried), an API that never
answers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.slow(minutes=3)


def _flow(project, *args, env=None):
    start = time.monotonic()
    proc = project.run("python", "-m", "flows", *args, env=env, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, lines[-1] if lines else "", time.monotonic() - start, proc.stdout + proc.stderr


def test_argument_mistakes_are_refused_before_prefect_starts(project):
    code, last, seconds, output = _flow(project, "run", "--jobs", "0")
    assert code == 2 and "--jobs: 0 is not allowed; expected an integer >= 1" in last
    code, last, seconds, output = _flow(project, "run", "--target", "train")
    assert code == 1 and "unknown stage 'train'; dvc.yaml has fetch, preprocess" in last
    assert "Traceback" not in output and "prefect" not in output.lower()  # no server, no run
    assert seconds < 15


def test_a_corrupt_params_file_is_named(project):
    (project.root / "params.yaml").write_text("train_cnn:\n  epochs: [1\n")
    code, last, _, output = _flow(project, "run", "--set", "train_cnn.epochs=2")
    assert code == 1 and "params.yaml is not valid YAML" in last and "line" in last, output[-2000:]


def test_a_failed_stage_is_the_last_line_with_its_own_error(project, tmp_path):
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    # 2,000 validation images leave none of the 2,000 training images to train on: no check of the
    # params alone can see it, so preprocess starts and fails at its work.
    code, last, _, output = _flow(project, "run", "--set", "preprocess.val_size=2000", env=env)
    assert code == 1
    assert "flow failed: stage preprocess failed: " in last and "must leave at least one on each side" in last, output


def test_a_value_a_stage_would_refuse_is_the_last_line_before_any_stage(project):
    code, last, seconds, output = _flow(project, "run", "--set", "train_cnn.epochs=0")
    assert code == 1
    assert last.endswith("run failed: params.yaml: train_cnn.epochs = 0 is not allowed; expected an integer >= 1"), (
        output
    )
    assert "Running stage" not in output and "prefect" not in output.lower()


def test_a_push_to_a_broken_remote_names_dvcs_error_and_is_not_retried(project, tmp_path):
    not_a_directory = tmp_path / "remote-file"
    not_a_directory.write_text("")
    project.run("dvc", "remote", "add", "-d", "broken", str(not_a_directory))
    code, last, _, output = _flow(project, "push")
    assert code == 1 and "push failed: dvc push failed: " in last and len(last.split("dvc push failed: ")[1]) > 10
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    code, last, seconds, output = _flow(project, "run", "--push", env=env)
    assert code == 1 and "flow failed: dvc push failed: " in last, output[-3000:]
    assert "Retrying" not in output  # a wrong path does not heal


def test_an_api_that_never_answers_fails_within_seconds_naming_its_url(project):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []  # connections held open, never answered

    def hold() -> None:
        with contextlib.suppress(OSError):  # the listener closes when the test ends
            for _ in range(8):
                accepted.append(listener.accept())

    threading.Thread(target=hold, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    try:
        code, last, seconds, output = _flow(project, "run", env={"PREFECT_API_URL": url})
    finally:
        listener.close()
    assert code == 1 and f"the Prefect API at {url} did not answer within 15s" in last, output[-2000:]
    assert seconds < 40


def test_an_embedded_server_that_cannot_start_in_time_says_what_to_do(project, tmp_path):
    # A first start migrates an empty database: far longer than the second allowed here.
    env = {"PREFECT_HOME": str(tmp_path / "empty-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}  # fmt: skip
    code, last, _, output = _flow(project, "run", "--target", "fetch", env=env)
    assert code == 1, output[-3000:]
    assert "Prefect's embedded server did not start within 1s: start a server (`prefect server start`)" in last
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in last
