"""Real Prefect servers and workers on 127.0.0.1, for the tests and bench/sweep.py: a server, and
the parts of a team of machines for sweeps (a bare git repo, a DVC remote, workers)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import Project, tool_env


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]  # PREFECT_HOME and PREFECT_API_URL for clients of this server

    def flow_runs(self, flows: dict | None = None, **flow_run_filter) -> list[dict]:
        body = {"flow_runs": flow_run_filter, **({"flows": flows} if flows else {})}
        response = httpx.post(f"{self.api_url}/flow_runs/filter", json=body, timeout=10)
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process started with start_new_session=True, and everything it started."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def running_prefect_server(home: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on 127.0.0.1 and a free port, PREFECT_HOME in `home`; stopped on exit."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **tool_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Scheduled runs appear within seconds instead of the default minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client_env = {**env, "PREFECT_API_URL": api_url}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        yield PrefectServer(api_url, client_env)
    finally:
        stop(server)
        log.close()


@dataclass
class Team:
    """What machines share in a sweep: a bare git repo, a DVC remote, and one Prefect server.
    `checkout` is the user's clone; `env` is what a worker needs (FMNIST_GIT_URL for prefect.yaml)."""

    base: Path
    checkout: Project
    git_remote: Path
    dvc_remote: Path
    server: PrefectServer

    @property
    def env(self) -> dict[str, str]:
        return {**self.server.env, "FMNIST_GIT_URL": str(self.git_remote)}

    def api(self, path: str, body: dict) -> list[dict]:
        response = httpx.post(f"{self.server.api_url}/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def latest_artifact(self, key: str) -> list[dict]:
        (artifact,) = self.api("artifacts/filter", {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC",
                                                    "limit": 1})  # fmt: skip
        return json.loads(artifact["data"])

    def logs_since(self, after: str) -> list[str]:
        """Every log line of the flow runs that started after `after` (ISO time)."""
        runs = self.api("flow_runs/filter", {"flow_runs": {"start_time": {"after_": after}}})
        logs: list[str] = []
        while True:  # the API answers 200 at most a request
            page = self.api("logs/filter", {"logs": {"flow_run_id": {"any_": [r["id"] for r in runs]}},
                                            "sort": "TIMESTAMP_ASC", "limit": 200, "offset": len(logs)})  # fmt: skip
            logs += [entry["message"] for entry in page]
            if len(page) < 200:
                return logs


def make_team(reproduced: Project, server: PrefectServer, base: Path) -> Team:
    """The tiny reproduced project as a user's clone of a bare git repo, with a committed default
    DVC remote that already holds its results (so points restore fetch and preprocess)."""
    git_remote, dvc_remote = base / "origin.git", base / "dvc-remote"
    checkout = reproduced.copy_to(base / "checkout")
    checkout.run("git", "init", "-q", "--bare", "--initial-branch", "main", str(git_remote))
    checkout.run("dvc", "remote", "add", "-d", "shared", str(dvc_remote))
    checkout.commit("shared DVC remote")
    checkout.run("git", "remote", "add", "origin", str(git_remote))
    checkout.run("git", "push", "-q", "origin", "main")
    checkout.run("python", "-m", "flows", "push")
    return Team(base, checkout, git_remote, dvc_remote, server)


def start_worker(team: Team, pool: str, name: str, *extra: str) -> subprocess.Popen:
    """A Prefect worker in its own directory under the team's base, standing in for a machine."""
    home = team.base / name
    home.mkdir(exist_ok=True)
    log = (home / "worker.log").open("w")
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", pool, "--name", name, *extra],
        cwd=home, env={**team.env, "FMNIST_MACHINE": name}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    return worker
