"""One point of a sweep, on whichever machine's worker takes it: a DVC experiment in a fresh clone.

Fresh clone of the sweep's exact commit -> the point's params -> the pipeline flow with `--pull`
(whatever any machine already computed is restored, not retrained) -> its outputs pushed to the
DVC remote -> `dvc exp save` -> the experiment's ref pushed to the git remote. A run its sweep gave
up on (a machine declared lost that comes back) writes none of it: flows/trial/fence.py. The sweep
(flows/sweep) starts one such run per point.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run as prefect_flow_run

from flows.contract import EPOCH_EVENT, EXPERIMENT_FLOW, RESULT_KEY
from flows.pipeline.flow import fmnist_pipeline
from flows.plumbing import dvc, git, remote
from flows.plumbing.network import NETWORK_RETRIES
from flows.plumbing.overrides import apply_overrides
from flows.trial.fence import Fence
from stages.lib import paths


def where() -> str:
    """Where this point ran, for the leaderboard: FMNIST_MACHINE if the worker's machine names
    itself, else the host name (a Kubernetes job's is its pod's), and the container if in one."""
    machine = os.environ.get("FMNIST_MACHINE") or socket.gethostname()
    container = _container_id()
    return f"{machine} (container {container})" if container else machine


def _container_id() -> str | None:
    """The Docker container this runs in, if any: with host networking its host name is the host's."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    found = re.search(r"/docker/containers/([0-9a-f]{64})/", mounts)
    return found[1][:12] if found else None


def result_row(root: Path) -> dict[str, Any]:
    """Both models' validation accuracy (at the kept epoch), test accuracy and macro-F1, and the
    seconds each training took."""
    evaluation = json.loads(paths.in_checkout(paths.EVALUATION, root).read_text())
    splits = json.loads(paths.in_checkout(paths.STATS, root).read_text())["splits"]
    row: dict[str, Any] = {"val_images": splits["val"]["count"]}
    for model in paths.MODELS:
        training = json.loads(paths.in_checkout(paths.training_metrics_file(model), root).read_text())
        row[f"{model}_val_accuracy"] = training["val_accuracy"]  # a search's objective: the kept epoch's
        row[f"{model}_accuracy"] = evaluation[model]["accuracy"]
        row[f"{model}_macro_f1"] = evaluation[model]["macro_f1"]
        row[f"{model}_train_seconds"] = training["train_seconds"]
    return row


def new_epochs(root: Path, since: float, sent: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """The epochs DVCLive logged in the clone `root` since the time `since` that are not in `sent`
    (added to it as they are returned), each {model, epoch, val_accuracy}."""
    found = []
    for model in paths.MODELS:
        summary = paths.in_checkout(paths.training_metrics_file(model), root)
        tsv = paths.in_checkout(paths.history_file(model, "val_accuracy"), root)
        try:
            # The commit's curve until the stage logs an epoch: the summary is in git and untouched
            # till then, where `dvc pull` may already have put the commit's TSVs (a DVC output).
            if summary.stat().st_mtime < since:
                continue
            rows = list(csv.DictReader(tsv.read_text().splitlines(), delimiter="\t"))
        except (OSError, csv.Error):
            continue
        for row in rows:
            epoch = int(row["step"]) + 1
            if (model, epoch) not in sent:
                sent.add((model, epoch))
                found.append({"model": model, "epoch": epoch, "val_accuracy": float(row["val_accuracy"])})
    return found


@contextlib.contextmanager
def epochs_reported(root: Path, seconds: float = 2.0) -> Iterator[None]:
    """While the block runs, each training epoch's validation accuracy as a Prefect event of this
    flow run, as DVCLive writes it in the clone: the sweep prunes a hopeless trial from these.
    (Events, because the sweep already reads this run's events for its heartbeats, and they
    cost no artifact and no log line.)"""
    resource = {"prefect.resource.id": f"prefect.flow-run.{prefect_flow_run.id}"}
    stop, sent, started = threading.Event(), set(), time.time()

    def report() -> None:
        while True:
            for payload in new_epochs(root, started, sent):
                emit_event(EPOCH_EVENT, resource=resource, payload=payload)
            if stop.wait(seconds):
                return

    # In this flow run's context: the thread then talks to the same Prefect API as the run.
    watcher = threading.Thread(target=contextvars.copy_context().run, args=(report,), name="epochs-reported",
                               daemon=True)  # fmt: skip
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


@task(name="dvc-push", cache_policy=NO_CACHE, **NETWORK_RETRIES)
def push_outputs(root: Path, fence: Fence) -> None:
    """The point's outputs and run-cache to the DVC remote, if its sweep still counts on this run."""
    fence.check()
    remote.share(root, get_run_logger())


def push_experiment(root: Path, name: str, fence: Fence, tries: int = 3) -> None:
    """The experiment's ref to the git remote, as `dvc exp push --no-cache` pushes it, but only over
    what this run saw there when it last found its sweep counting on it: a run paused between that
    look and its push cannot overwrite the experiment of the run that replaced it."""
    ref = git.experiment_ref(root, name)
    if ref is None:
        raise RuntimeError(f"{name}: `dvc exp save` left no experiment ref")
    for _ in range(tries):
        seen = git.remote_ref(root, "origin", ref)
        fence.check()
        if git.push_ref(root, "origin", ref, seen):
            return
    raise RuntimeError(f"{name}: the git remote's experiment kept changing under this run ({tries} tries)")


@flow(name=EXPERIMENT_FLOW)
def fmnist_experiment(repository: str, commit: str, name: str, overrides: list[str], jobs: int = 2) -> dict[str, Any]:
    """Run one param set of the pipeline as the DVC experiment `name`, in a fresh clone of `commit`.

    Args:
        repository: the git remote (URL or path) to clone from and push the experiment to.
        commit: the sweep's commit (a full SHA): the point runs exactly that code and those params.
        name: the DVC experiment's name (`<sweep>-<point>`).
        overrides: the point's `section.key=value` params.
        jobs: stages at once within the point (train-mlp beside train-cnn).
    """
    logger = get_run_logger()
    start = time.perf_counter()
    # What the row says unless the point finishes or fails: a cancelled point is stopped.
    row: dict[str, Any] = {"experiment": name, "where": where(), "status": "stopped", "error": "stopped early"}
    # Where it runs, at once: if this machine is lost, the sweep's row says where that was. Only
    # that: a point is not to fail on it (the API may be restarting).
    try:
        create_table_artifact(key=RESULT_KEY, table=[{**row, "status": "running", "error": ""}],
                              description=f"Sweep point {name}, running")  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        logger.warning("%s: could not say where it runs (%s)", name, exc)
    # Kept off the worker's own checkout, removed whatever happens: the results live in the
    # DVC remote and the experiment ref on the git remote.
    workdir = Path(tempfile.mkdtemp(prefix=f"fmnist-{name}-", dir=os.environ.get("FMNIST_WORKDIR")))
    fence = Fence(name)  # a run its sweep gave up on writes nothing of the point (flows/trial/fence.py)
    try:
        with fence.watching():
            root = workdir / "checkout"
            git.clone_at(repository, commit, root)
            logger.info("%s: clone of %s at %s in %s on %s", name, repository, commit[:9], root, row["where"])
            git.ensure_identity(root)
            apply_overrides(overrides, root / "params.yaml")
            with epochs_reported(root):
                stages = fmnist_pipeline(pull=True, jobs=jobs, project=str(root))
            row.update(result_row(root))
            push_outputs(root, fence)
            # --force: a rerun of the point on this machine records its results under the same name.
            dvc.dvc(root, "exp", "save", "--force", "--name", name, "--message", f"{name}: {' '.join(overrides)}")
            push_experiment(root, name, fence)
            fence.check()  # the last look, before its result and its Completed state
        ran = [s["stage"] for s in stages if s["status"] == "ran"]
        logger.info("%s: experiment pushed; stages run here: %s", name, ", ".join(ran) or "none (restored or skipped)")
        # A resumed sweep shows here that a finished point was restored, not retrained.
        row.update(status="done", ran=", ".join(ran) or "none", error="")
    except Exception as exc:
        row.update(status="failed", error=str(exc).splitlines()[0])
        raise
    finally:
        row["seconds"] = round(time.perf_counter() - start, 1)
        create_table_artifact(key=RESULT_KEY, table=[row], description=f"Result of sweep point {name}")
        shutil.rmtree(workdir, ignore_errors=True)
    return row
