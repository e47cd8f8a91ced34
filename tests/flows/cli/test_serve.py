"""Scheduled runs against a real Prefect server: a served interval schedule, and the
prefect.yaml deployment picked up by a process worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import psutil
import pytest

from tests.flows.servers import stop
from tests.helpers import wait_for

pytestmark = pytest.mark.slow(minutes=3)


@pytest.fixture(scope="module")
def project(reproduced, tmp_path_factory):
    """A tiny, already reproduced project: scheduled runs find it up to date and finish fast."""
    return reproduced.copy_to(tmp_path_factory.mktemp("scheduled") / "project")


def test_served_interval_schedule_runs_the_flow(project, prefect_server, tmp_path):
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        ["python", "-m", "flows", "serve", "--interval", "5", "--name", "every-5s"],
        cwd=project.root, env=prefect_server.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        completed = wait_for(
            lambda: [
                run
                for run in prefect_server.flow_runs(state={"type": {"any_": ["COMPLETED"]}})
                if run["auto_scheduled"]
            ],
            timeout=240,
            what="an auto-scheduled run of the served flow to complete",
            poll=2,
        )
        tree = [psutil.Process(serve.pid), *psutil.Process(serve.pid).children(recursive=True)]
        os.killpg(serve.pid, signal.SIGTERM)  # what a service manager sends: it stops, and its runs with it
        stopping = time.monotonic()
        serve.wait(90)
        # In seconds: passed on as Ctrl-C, Prefect's clean way out, not its SIGTERM handler, which
        # has hung (killed after 60 s: flows/cli/main.py).
        assert time.monotonic() - stopping < 30, (tmp_path / "serve.log").read_text()[-3000:]
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, [" ".join(p.cmdline()[:4]) for p in alive]
    finally:
        stop(serve)
        log.close()
    assert completed[0]["parameters"] == {
        "targets": None, "force": False, "overrides": [], "jobs": 2, "pull": False, "push": False
    }  # fmt: skip
    assert project.repro() == []  # the run kept DVC's record true


def test_deployment_runs_on_a_process_worker(project, prefect_server, tmp_path):
    env = prefect_server.env
    project.run("prefect", "work-pool", "create", "fmnist-process", "--type", "process", "--overwrite", env=env)
    project.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-nightly", env={**env, "PWD": str(project.root)})
    out = project.run("prefect", "deployment", "run", "fmnist-pipeline/fmnist-nightly", env=env).stdout
    run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
    # The worker starts elsewhere: the deployment's pull step must take it to the checkout.
    worker = subprocess.run(
        ["prefect", "worker", "start", "--pool", "fmnist-process", "--run-once"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout + worker.stderr
    runs = prefect_server.flow_runs(id={"any_": [run_id]})
    assert runs and runs[0]["state"]["type"] == "COMPLETED", (runs, worker.stdout[-3000:], worker.stderr[-3000:])
    deployment = project.run("prefect", "deployment", "inspect", "fmnist-pipeline/fmnist-nightly", env=env).stdout
    assert "0 2 * * *" in deployment
    api = httpx.get(f"{prefect_server.api_url}/deployments/name/fmnist-pipeline/fmnist-nightly", timeout=10).json()
    # {{ $PWD }} resolved when deployed (read from the API: `inspect` wraps a long path over lines)
    assert api["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(project.root)}}]
    assert api["global_concurrency_limit"]["limit"] == 1  # one run at a time
    assert api["concurrency_options"]["collision_strategy"] == "ENQUEUE"


def test_container_deployments_clone_the_repo_and_share_results_through_the_remote(project, prefect_server):
    """No Docker engine here: the deployment is registered on a Docker pool and checked, not run.
    What its runs do (fresh clone, pull, reproduce, push) is tested in tests/test_shared_cache.py."""
    env = {
        **prefect_server.env,
        "FMNIST_GIT_URL": "https://git.example.com/ml/fmnist-pipeline.git",
        "FMNIST_IMAGE": "registry.example.com/fmnist-pipeline:test",
    }
    project.run("prefect", "work-pool", "create", "fmnist-docker", "--type", "docker", "--overwrite", env=env)
    project.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-docker", env=env)
    api = httpx.get(f"{prefect_server.api_url}/deployments/name/fmnist-pipeline/fmnist-docker", timeout=10).json()
    assert api["work_pool_name"] == "fmnist-docker"
    assert api["pull_steps"] == [
        {"prefect.deployments.steps.git_clone": {"repository": env["FMNIST_GIT_URL"], "branch": "main"}}
    ]
    assert api["job_variables"]["image"] == env["FMNIST_IMAGE"]
    assert {k: api["parameters"][k] for k in ("pull", "push", "jobs")} == {"pull": True, "push": True, "jobs": 2}
    assert api["global_concurrency_limit"]["limit"] == 1
