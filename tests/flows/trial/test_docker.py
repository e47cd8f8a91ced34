"""The container deployments for real: the project's Dockerfile built on a Debian base image, a
Prefect Docker worker, the pipeline and a sweep in containers, results shared through git and
the DVC remote. Host networking only: every server here listens on 127.0.0.1.

A Docker engine is required under CI (`.ci/run` starts one); elsewhere these tests are skipped
when none answers, with one line saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from tests.flows.servers import Team, make_team, start_worker, stop
from tests.helpers import PROJECT, Project, tf_startup_lines, wait_for

pytestmark = pytest.mark.slow(minutes=8)

BASE_IMAGE = "fmnist-test-base:bookworm"
IMAGE = "fmnist-pipeline:test"


def docker(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def require_docker() -> None:
    answered = shutil.which("docker") is not None and docker("info", timeout=30).returncode == 0
    if answered:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("no Docker engine answers `docker info`; .ci/run starts one (dockerd --bridge=none)")
    pytest.skip("no Docker engine answers `docker info`: the Docker tests were skipped")


@pytest.fixture(scope="module")
def image() -> str:
    """The project's Dockerfile built on a debootstrapped Debian (no image registry here). Under CI
    the build started with the run (.ci/run): this waits for it and finds its layers cached."""
    require_docker()
    # A session of its own: stopped on a timeout (or a stopped suite) with debootstrap and `docker
    # build` under it, not the script alone.
    script = PROJECT / "tests/containers/project_image.sh"
    build = subprocess.Popen(["bash", str(script), BASE_IMAGE, IMAGE], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        output, _ = build.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        pytest.fail("the test images were not built within 1800 s (tests/containers/project_image.sh)")
    finally:
        stop(build)
    assert build.returncode == 0, output[-6000:]
    return IMAGE


@pytest.fixture(scope="module")
def team(image, reproduced, prefect_server, tmp_path_factory):
    """Both container deployments on a Docker pool, and a Docker worker. Containers see the git
    and DVC remotes at the same paths as the host, and reach the Prefect server on 127.0.0.1."""
    team = make_team(reproduced, prefect_server, tmp_path_factory.mktemp("docker"))
    env = {**team.env, "FMNIST_IMAGE": image}
    team.checkout.run("prefect", "work-pool", "create", "fmnist-docker", "--type", "docker", "--overwrite", env=env)
    # Given on the command line, these replace prefect.yaml's job variables: the image too.
    variables = json.dumps({"image": image, "network_mode": "host", "image_pull_policy": "Never", "auto_remove": True,
                            "volumes": [f"{team.base}:{team.base}"]})  # fmt: skip
    for name in ("fmnist-docker", "fmnist-experiment-docker"):
        team.checkout.run("prefect", "--no-prompt", "deploy", "--name", name, "--job-variable", variables, env=env)
    worker = start_worker(team, "fmnist-docker", "docker-host", "--type", "docker")
    try:
        yield team
    finally:
        stop(worker)
        leftovers = docker("ps", "-aq", "--filter", f"ancestor={image}").stdout.split()
        if leftovers:
            docker("rm", "-f", *leftovers)


def wait_for_run(team: Team, run_id: str, timeout: float = 900) -> dict:
    def ended() -> dict | None:
        (run,) = team.server.flow_runs(id={"any_": [run_id]})
        return run if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None

    try:
        return wait_for(ended, timeout, f"flow run {run_id} ended", poll=3)
    except AssertionError:
        worker_log = (team.base / "docker-host" / "worker.log").read_text()[-3000:]
        raise AssertionError(f"flow run {run_id} did not finish in {timeout:.0f}s; worker log:\n{worker_log}") from None


def test_the_pipeline_runs_in_a_container_and_a_fresh_clone_reruns_nothing(team, tmp_path):
    team.checkout.set_params(train_cnn={"seed": 11})  # a CNN nobody trained yet
    team.checkout.commit("train_cnn.seed=11")
    team.checkout.run("git", "push", "-q", "origin", "main")
    before = datetime.now(timezone.utc).isoformat()
    out = team.checkout.run("prefect", "deployment", "run", "fmnist-pipeline/fmnist-docker", env=team.env).stdout
    run = wait_for_run(team, next(line.split()[-1] for line in out.splitlines() if "UUID" in line))
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["infrastructure_pid"], "the run had no container"
    logs = "\n".join(team.logs_since(before))
    assert "Running stage 'train-cnn'" in logs and "cnn: kept epoch" in logs  # the stages' own lines
    assert tf_startup_lines(logs) == []  # and none of TensorFlow's start-up lines

    clone = tmp_path / "host-clone"
    team.checkout.run("git", "clone", "-q", str(team.git_remote), str(clone))
    host = Project.existing(clone)
    host.run("dvc", "pull", "--run-cache", "--allow-missing")
    out = host.run("dvc", "repro", "--pull").stdout  # --pull: the outputs of the container's runs
    assert "Running stage" not in out, out
    assert "Stage 'train-cnn' is cached - skipping run" in out
    assert "up to date" in host.run("dvc", "status").stdout


def test_a_sweep_runs_its_points_in_containers(team):
    proc = team.checkout.run(
        "python", "-m", "flows", "sweep", "-S", "train_cnn.dense_units=8",
        "--deployment", "fmnist-experiment-docker", env=team.env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert len(table) == 1 and {r["status"] for r in table} == {"done"}
    assert all("train-cnn" in r["ran"] and "(container " in r["where"] for r in table)  # trained in containers
    shown = team.checkout.run("dvc", "exp", "show", "--json").stdout
    assert all(r["experiment"] in shown for r in table)
    assert not docker("ps", "-q", "--filter", f"ancestor={IMAGE}").stdout.strip()  # every container is gone
