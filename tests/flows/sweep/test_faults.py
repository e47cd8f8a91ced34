"""Sweeps that survive what a team's machines do: a worker's machine lost mid-training (the whole
process tree SIGKILLed at once), a sweep stopped while a point is lost, the sweep process killed and
started again, the Prefect server killed and restarted, then killed for longer. On a Prefect server
on PostgreSQL (a team's server), with two process workers standing for two machines."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from tests.flows.servers import Team, kill_tree, make_team, running_postgres, running_prefect_server, start_worker, stop
from tests.helpers import wait_for

pytestmark = pytest.mark.slow(minutes=16)

# Some seconds an epoch on the tiny data (3-6 s on the slowest machine kind, the suite beside it): a
# point is still at work when the test strikes (after its second epoch at the latest; its evaluate,
# report and push come after the training), and a lost one trained again elsewhere costs a minute or
# two. Each epoch more is CPU-seconds on both machines.
SLOW_ENOUGH = {"epochs": 4, "patience": 4, "filters": [16, 32], "dense_units": 64}
# Where the server goes away twice, the point's training is held (SIGSTOP) from its first epoch until
# the sweep has ended, so that it is still training when the server goes away the second time,
# whatever the machine's speed; the four epochs after the first leave time to hold it before it ends
# (a second or more each on the fastest idle machine, against the 0.2 s the test polls), and the
# resumed sweep trains what is left of them.
TRAINING_THROUGH_AN_OUTAGE = ("-S", "train_cnn.epochs=5", "-S", "train_cnn.patience=5")
MACHINES = ("machine-a", "machine-b")


class Machines:
    """The team's workers, one per machine, each taking one point at a time."""

    def __init__(self, team: Team):
        self.team, self.workers = team, {}

    def start(self, name: str) -> None:
        self.workers[name] = start_worker(self.team, "fmnist-experiments", name, "--limit", "1")

    def lose(self, name: str) -> list[psutil.Process]:
        """The machine gone: its worker, the point's flow run and its stages, SIGKILLed together."""
        return kill_tree(self.workers.pop(name).pid)

    def freeze(self, name: str) -> list[psutil.Process]:
        """The machine paused (a suspended VM, a partition, a long stall): its whole process tree
        SIGSTOPped, all found first. Returns what was frozen."""
        root = psutil.Process(self.workers[name].pid)
        tree = [root, *root.children(recursive=True)]
        for proc in tree:
            proc.suspend()
        return tree

    def hold_training(self, name: str) -> list[psutil.Process]:
        """The machine's training stage paused, its worker and flow run going on (heartbeats and all):
        a training that takes as long as the test needs. Returns what was paused."""
        root = psutil.Process(self.workers[name].pid)
        stage = [p for p in root.children(recursive=True) if "stages.train_cnn" in " ".join(p.cmdline())]
        assert stage, f"no training stage on {name}"
        for proc in stage:
            proc.suspend()
        return stage

    @staticmethod
    def thaw(tree: list[psutil.Process]) -> None:
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.resume()

    def log(self, name: str) -> str:
        return (self.team.base / name / "worker.log").read_text()

    def training(self, epoch: int) -> str | None:
        """The machine whose point has checkpointed `epoch`, if any."""
        return next((m for m in self.workers if f"checkpoint saved after epoch {epoch}" in self.log(m)), None)

    def stop_all(self) -> None:
        for worker in self.workers.values():
            stop(worker)


@pytest.fixture(scope="module")
def team(reproduced, tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    with running_postgres() as database, running_prefect_server(base / "prefect", database) as server:
        team = make_team(reproduced, server, base)
        team.checkout.set_params(train_cnn=SLOW_ENOUGH)
        team.checkout.commit("a CNN slow enough to strike mid-training")
        team.checkout.run("git", "push", "-q", "origin", "main")
        team.checkout.run("prefect", "work-pool", "create", "fmnist-experiments", "--type", "process", "--overwrite",
                          env=team.env)  # fmt: skip
        team.checkout.run("prefect", "--no-prompt", "deploy", "--name", "fmnist-experiment", env=team.env)
        yield team


@pytest.fixture
def machines(team):
    machines = Machines(team)
    for name in MACHINES:
        machines.start(name)
    try:
        yield machines
    finally:
        machines.stop_all()


def start_sweep(team: Team, *args: str, log: Path | None = None) -> subprocess.Popen:
    """The sweep in the background, its output piped (read at its end) or written to `log` (read
    while it runs)."""
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("w")) if log else subprocess.PIPE
        return subprocess.Popen(
            ["python", "-m", "flows", "sweep", *args], cwd=team.checkout.root, env=team.env,
            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip


def point_runs(team: Team, seeds: tuple[int, ...]) -> dict[str, list[dict]]:
    """{point name: its flow runs} of the sweep over `seeds`, from the server."""
    runs = team.server.flow_runs(flows={"name": {"any_": ["fmnist-experiment"]}})
    grid = {f"train_cnn.seed={seed}" for seed in seeds}
    mine = [r for r in runs if set(r["parameters"].get("overrides", [])) & grid]
    found: dict[str, list[dict]] = {}
    for run in mine:
        found.setdefault(run["name"], []).append(run)
    return found


def running_on(team: Team, seeds: tuple[int, ...], count: int) -> bool:
    runs = point_runs(team, seeds)
    return sum(r["state"]["type"] == "RUNNING" for rs in runs.values() for r in rs) >= count


def _remote_state(team: Team) -> tuple[dict[str, str], set[str]]:
    """The experiments on the git remote ({ref: commit}) and every file on the DVC remote."""
    refs = team.checkout.run("git", "ls-remote", str(team.git_remote), "refs/exps/*").stdout.split()
    files = {str(p.relative_to(team.dvc_remote)) for p in team.dvc_remote.rglob("*") if p.is_file()}
    return dict(zip(refs[1::2], refs[0::2], strict=True)), files


def test_a_frozen_machines_point_runs_again_elsewhere_and_the_machine_back_writes_nothing(team, machines):
    """A machine paused mid-training past --lost-after: its point is declared lost and runs again on
    the other machine, and the sweep ends. Then the paused machine comes back: its run finds it was
    given up on, stops, and writes nothing of the point (no experiment, no DVC outputs, no Completed
    state over its Crashed one)."""
    sweep = start_sweep(team, "-S", "train_cnn.seed=1", "--lost-after", "60")
    frozen = []
    try:
        paused = wait_for(lambda: machines.training(epoch=2), 600, "the point training")
        other = next(m for m in MACHINES if m != paused)
        frozen = machines.freeze(paused)
        lost_at, lost_clock = datetime.now(timezone.utc), time.monotonic()
        output, _ = sweep.communicate(timeout=600)
        ended = time.monotonic() - lost_clock
        accepted = _remote_state(team)
    finally:
        stop(sweep)
        machines.thaw(frozen)
    assert sweep.returncode == 0, output[-4000:]
    # Done within 5 minutes of the loss: the loss declared (below), then the point trained again
    # from the start on the other machine (about 2 minutes on the slowest 2-vCPU machine kind, the
    # whole suite running beside it).
    assert ended < 300, f"the sweep ended {ended:.0f}s after the loss"
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert [(r["status"], r["lost_on"], r["where"]) for r in table] == [("done", paused, other)], table
    crashed = [r for rs in point_runs(team, (1,)).values() for r in rs if r["state"]["type"] == "CRASHED"]
    assert len(crashed) == 1 and crashed[0]["state"]["message"].startswith("lost: no heartbeat for ")
    assert paused in crashed[0]["state"]["message"]
    # Declared lost within --lost-after of its last heartbeat (sent at most 30 s before the loss),
    # give or take the sweep's polling and API calls on a busy machine.
    declared = datetime.fromisoformat(crashed[0]["state"]["timestamp"])
    assert (declared - lost_at).total_seconds() < 60 + 90, (declared, lost_at)
    # Back: the paused run finds it was given up on within seconds, stops its stages and ends.
    wait_for(lambda: not [p for p in frozen[1:] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], 120,
             "the paused machine's run and stages to end")  # fmt: skip
    log = machines.log(paused)
    assert "this run stops and writes nothing of the point" in log, log[-3000:]
    assert _remote_state(team) == accepted  # the experiment and the outputs are the accepted run's alone
    runs = point_runs(team, (1,))
    assert sorted(r["state"]["type"] for rs in runs.values() for r in rs) == ["COMPLETED", "CRASHED"]


def test_stopping_a_sweep_with_a_lost_point_ends_it_in_seconds(team, machines):
    # A live point cancelled by a stop: the TPE test in tests/flows/sweep/test_flow.py.
    sweep = start_sweep(team, "-S", "train_cnn.seed=3")
    try:
        lost = wait_for(lambda: machines.training(epoch=1), 600, "the point training")
        machines.lose(lost)
        time.sleep(70)  # silent for more than two heartbeats, not yet the 120 s that declare it lost
        sweep.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        output, _ = sweep.communicate(timeout=60)
    finally:
        stop(sweep)
    assert time.monotonic() - stopped < 30, output[-3000:]
    assert sweep.returncode == 128 + signal.SIGTERM, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "interrupted: points " in last and "lost, marked cancelled" in last, last
    # The lost machine cannot carry out a cancellation: the point is marked Cancelled at once.
    (runs,) = point_runs(team, (3,)).values()
    assert runs[0]["state"]["type"] == "CANCELLED" and "its machine was lost" in (runs[0]["state"]["message"] or "")


def test_a_server_restart_costs_a_sweep_nothing_and_after_a_long_outage_or_a_kill_the_sweep_resumes(team, machines):
    """The server killed and started again within --api-outage: the sweep rides it out. Killed
    again for longer: the sweep ends in one line. The same sweep started again waits for its point,
    still running, instead of starting it again; that sweep killed in turn (a closed laptop, nothing
    passed on) leaves nothing of itself behind and the point goes on; started once more, it waits for
    the point to finish."""
    args = ("-S", "train_cnn.seed=7", *TRAINING_THROUGH_AN_OUTAGE, "--api-outage", "60")  # one point is enough
    sweep = start_sweep(team, *args)
    held = []
    try:
        training = wait_for(lambda: machines.training(epoch=1), 600, "the point training", poll=0.2)
        held = machines.hold_training(training)
        team.server.kill()
        killed = time.monotonic()
        time.sleep(2)
        team.server.start()  # back within --api-outage, even on a busy machine (a start takes 10-30 s)
        # Past --api-outage since the kill, and the sweep goes on: it counts only the seconds unanswered.
        time.sleep(max(0.0, killed + 65 - time.monotonic()))
        assert sweep.poll() is None, f"a restart ended the sweep: {sweep.communicate()[0][-3000:]}"
        wait_for(lambda: running_on(team, (7,), 1), 120, "the point running after the restart")
        team.server.kill()  # now for longer than --api-outage
        output, _ = sweep.communicate(timeout=300)
        assert sweep.returncode == 1, output[-3000:]
        last = output.strip().splitlines()[-1]
        assert f"sweep failed: the Prefect API at {team.server.api_url} " in last, output[-3000:]
        assert "start it again and run the same sweep to resume" in last

        team.server.start()
        log = team.base / "sweep-again.log"
        sweep = start_sweep(team, *args, log=log)

        def waiting() -> bool:
            assert sweep.poll() is None, f"the sweep started again ended: {log.read_text()[-3000:]}"
            return "waited for, not started again" in log.read_text()

        wait_for(waiting, 300, "the sweep started again waiting for its point")
        tree = [psutil.Process(sweep.pid), *psutil.Process(sweep.pid).children(recursive=True)]
        sweep.kill()
        gone = time.monotonic()
        sweep.wait()
        psutil.wait_procs(tree, timeout=5)
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert time.monotonic() - gone < 6
        assert running_on(team, (7,), 1), f"the point goes on without the sweep: {point_runs(team, (7,))}"
    finally:
        stop(sweep)
        machines.thaw(held)
        if team.server.process.poll() is not None:
            team.server.start()
    again = team.checkout.run("python", "-m", "flows", "sweep", *args, env=team.env, check=False)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "waited for, not started again" in again.stderr
    assert [len(rs) for rs in point_runs(team, (7,)).values()] == [1]  # not started twice
    table = team.latest_artifact("fmnist-sweep-leaderboard")
    assert [r["status"] for r in table] == ["done"], json.dumps(table)[:2000]
