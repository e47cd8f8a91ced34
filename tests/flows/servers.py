"""Real Prefect servers and workers on 127.0.0.1, for the tests and the sweep benchmarks: a server (on
SQLite, or on a PostgreSQL cluster of its own), and the parts of a team of machines for sweeps (a
bare git repo, a DVC remote, workers)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import Project, tool_env


@dataclass
class PrefectServer:
    """`prefect server start` on 127.0.0.1: one port and one database, so that it can be killed and
    started again where clients expect it."""

    api_url: str
    server_env: dict[str, str]  # what the server runs with (PREFECT_HOME, the database)
    log: Path
    process: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """PREFECT_HOME and PREFECT_API_URL, for clients of this server."""
        return {**self.server_env, "PREFECT_API_URL": self.api_url}

    def flow_runs(self, flows: dict | None = None, **flow_run_filter) -> list[dict]:
        body = {"flow_runs": flow_run_filter, **({"flows": flows} if flows else {})}
        response = httpx.post(f"{self.api_url}/flow_runs/filter", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def start(self, timeout: float = 180) -> None:
        """Start it; returns once it answers."""
        port = self.api_url.rsplit(":", 1)[1].split("/")[0]
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                ["prefect", "server", "start", "--host", "127.0.0.1", "--port", port],
                env=self.server_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Gone at once, it and all it started (SIGKILL), as when its machine dies."""
        if self.process is not None:
            kill_tree(self.process.pid)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


def stop_on_sigterm() -> None:
    """A SIGTERM ends this process as Ctrl-C does, through its `finally` blocks, so that the servers
    and workers it started stop with it (for the benches, which run for long and get killed)."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


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


def kill_tree(pid: int) -> list[psutil.Process]:
    """SIGKILL a process and every process below it, all found first and then killed together, as
    when a machine disappears (some of them sit in sessions of their own). Returns what was killed."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(tree, timeout=10)
    return tree


@contextmanager
def running_prefect_server(home: Path, database: str | None = None) -> Iterator[PrefectServer]:
    """A server with PREFECT_HOME in `home`, its database SQLite there or `database` (a PostgreSQL
    URL), on a free port; stopped on exit."""
    server_env = {
        **tool_env(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Scheduled runs appear within seconds instead of the default minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        **({"PREFECT_API_DATABASE_CONNECTION_URL": database} if database else {}),
    }
    home.mkdir(parents=True, exist_ok=True)
    server = PrefectServer(f"http://127.0.0.1:{_free_port()}/api", server_env, home / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def require_postgres() -> Path:
    """The directory of Debian's PostgreSQL binaries; under CI their absence fails (.ci/run installs them)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql")
    pytest.skip("PostgreSQL is not installed (apt-get install postgresql): the PostgreSQL tests were skipped")


@contextmanager
def running_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of its own, run as the `postgres` user (it refuses root), listening on
    127.0.0.1 and a free port; yields the database URL for Prefect, and stops it on exit."""
    bindir = require_postgres()
    base = Path(tempfile.mkdtemp(prefix="fmnist-postgres-"))  # pytest's tmp dirs are closed to other users
    shutil.chown(base, "postgres", "postgres")
    port, data = _free_port(), base / "data"

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, cwd=base)

    try:
        as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "postgres.log"), "-w", "start",
                    "-o", f"-h 127.0.0.1 -p {port} -k {base} -c max_connections=200")  # fmt: skip
        as_postgres(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "prefect")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


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
    env = {**team.env, "FMNIST_MACHINE": name}
    worker = subprocess.Popen(
        ["prefect", "worker", "start", "--pool", pool, "--name", name, *extra],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    return worker
