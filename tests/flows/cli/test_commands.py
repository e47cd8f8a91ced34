"""`fmnist-flow` failures end with one line naming the cause: argument mistakes before Prefect
starts, a stage's own error, DVC's error on a broken remote (not retried), an API that never
answers. What a command refuses before Prefect starts is decided without a process, in milliseconds."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time

import pytest

from flows.cli import commands
from flows.cli.args import parse
from stages.lib.paths import ROOT

SLOW = pytest.mark.slow(minutes=3)  # `fmnist-flow` in a process of its own, on a real project


def _flow(project, *args, env=None):
    start = time.monotonic()
    proc = project.run("python", "-m", "flows", *args, env=env, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, lines[-1] if lines else "", time.monotonic() - start, proc.stdout + proc.stderr


@SLOW
def test_argument_mistakes_are_refused_before_prefect_starts(project):
    code, last, seconds, output = _flow(project, "run", "--jobs", "0")
    assert code == 2 and "--jobs: 0 is not allowed; expected an integer >= 1" in last
    code, last, seconds, output = _flow(project, "run", "--target", "train")
    assert code == 1 and "unknown stage 'train'; dvc.yaml has fetch, preprocess" in last
    assert "Traceback" not in output and "prefect" not in output.lower()  # no server, no run
    assert seconds < 15


@SLOW
def test_a_corrupt_params_file_is_named(project):
    (project.root / "params.yaml").write_text("train_cnn:\n  epochs: [1\n")
    code, last, _, output = _flow(project, "run", "--set", "train_cnn.epochs=2")
    assert code == 1 and "params.yaml is not valid YAML" in last and "line" in last, output[-2000:]


@SLOW
def test_a_failed_stage_is_the_last_line_with_its_own_error(project, embedded_prefect_env):
    # 2,000 validation images leave none of the 2,000 training images to train on: no check of the
    # params alone can see it, so preprocess starts and fails at its work.
    code, last, _, output = _flow(project, "run", "--set", "preprocess.val_size=2000", env=embedded_prefect_env)
    assert code == 1
    assert "flow failed: stage preprocess failed: " in last and "must leave at least one on each side" in last, output


@SLOW
def test_a_push_to_a_broken_remote_names_dvcs_error_and_is_not_retried(project, tmp_path, embedded_prefect_env):
    not_a_directory = tmp_path / "remote-file"
    not_a_directory.write_text("")
    project.run("dvc", "remote", "add", "-d", "broken", str(not_a_directory))
    code, last, _, output = _flow(project, "push")
    assert code == 1 and "push failed: dvc push failed: " in last and len(last.split("dvc push failed: ")[1]) > 10
    code, last, seconds, output = _flow(project, "run", "--push", env=embedded_prefect_env)
    assert code == 1 and "flow failed: dvc push failed: " in last, output[-3000:]
    assert "Retrying" not in output  # a wrong path does not heal


@SLOW
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


@SLOW
def test_an_embedded_server_that_cannot_start_in_time_says_what_to_do(project, tmp_path):
    # A first start migrates an empty database: far longer than the second allowed here.
    env = {"PREFECT_HOME": str(tmp_path / "empty-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"}  # fmt: skip
    code, last, _, output = _flow(project, "run", "--target", "fetch", env=env)
    assert code == 1, output[-3000:]
    assert "Prefect's embedded server did not start within 1s: start a server (`prefect server start`)" in last
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in last


# --- refused before Prefect starts, in milliseconds ---


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A directory holding the pipeline's dvc.yaml and params.yaml, the working directory."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "last"),
    [
        (["run", "--target", "trian"], "run failed: unknown stage 'trian'; dvc.yaml has fetch, preprocess"),
        (["run", "--set", "train_cnn.epochs=0"],
         "run failed: params.yaml: train_cnn.epochs = 0 is not allowed; expected an integer >= 1"),
        (["serve", "--interval", "3600", "--set", "train_mlp.hidden_units=[512,abc]"],
         "serve failed: params.yaml: train_mlp.hidden_units"),
    ],
)  # fmt: skip
def test_a_pipeline_command_refuses_a_stage_or_value_in_one_line_leaving_params_as_they_were(
    argv, last, checkout, last_line
):
    before = (checkout / "params.yaml").read_bytes()
    with pytest.raises(SystemExit) as ended:
        commands._pipeline_params(parse(argv))
    assert ended.value.code == 1
    assert last_line().startswith(last)
    assert (checkout / "params.yaml").read_bytes() == before


def test_a_pipeline_command_passes_its_targets_and_values_on(checkout):
    root, params = commands._pipeline_params(parse(["run", "--target", "evaluate", "--set", "train_cnn.epochs=2"]))
    assert root == str(checkout.resolve())
    assert params["targets"] == ["evaluate"] and params["overrides"] == ["train_cnn.epochs=2"]


def test_an_api_that_refuses_connections_is_named_with_what_to_do():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    with temporary_settings({PREFECT_API_URL: url}), pytest.raises(RuntimeError) as refused:
        commands.check_api()
    assert str(refused.value).startswith(f"the Prefect API at {url} failed (")
    assert str(refused.value).endswith("or unset PREFECT_API_URL to run on Prefect's embedded server")
    with temporary_settings({PREFECT_API_URL: ""}):
        commands.check_api()  # unset: Prefect's embedded server, nothing to ask
