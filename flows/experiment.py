"""One point of a sweep, on whichever machine's worker takes it: a DVC experiment in a fresh clone.

Fresh clone of the sweep's exact commit -> the point's params -> the pipeline flow with `--pull`
(whatever any machine already computed is restored, not retrained) and `--push` -> `dvc exp save`
-> `dvc exp push` to the git remote. The sweep (flows/sweep.py) starts one such run per point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows import dvc_cli as dvc
from flows.params import apply_overrides
from flows.pipeline import fmnist_pipeline

FLOW_NAME = "fmnist-experiment"
RESULT_KEY = "fmnist-experiment-result"  # the artifact the sweep reads each point's row from


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


def _git_identity(root: Path) -> None:
    """`dvc exp save` makes a git commit: give a bare worker (a container) a committer."""
    if dvc.run(root, "git", "config", "user.email", check=False).stdout.strip():
        return
    for key, value in (("user.name", "fmnist-flow"), ("user.email", f"fmnist-flow@{socket.gethostname()}")):
        dvc.run(root, "git", "config", key, value)


def result_row(root: Path) -> dict[str, Any]:
    """Test accuracy and macro-F1 of both models, and the seconds each training took."""
    evaluate = json.loads((root / "metrics" / "evaluate.json").read_text())
    row: dict[str, Any] = {}
    for model in ("mlp", "cnn"):
        training = json.loads((root / "dvclive" / f"train_{model}" / "metrics.json").read_text())
        row[f"{model}_accuracy"] = evaluate[model]["accuracy"]
        row[f"{model}_macro_f1"] = evaluate[model]["macro_f1"]
        row[f"{model}_train_seconds"] = training["train_seconds"]
    return row


@flow(name=FLOW_NAME)
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
    # Kept off the worker's own checkout, removed whatever happens: the results live in the
    # DVC remote and the experiment ref on the git remote.
    workdir = Path(tempfile.mkdtemp(prefix=f"fmnist-{name}-", dir=os.environ.get("FMNIST_WORKDIR")))
    try:
        root = workdir / "checkout"
        dvc.run(workdir, "git", "clone", "--quiet", "--no-checkout", repository, str(root))
        dvc.run(root, "git", "checkout", "--quiet", "--detach", commit)
        logger.info("%s: clone of %s at %s in %s on %s", name, repository, commit[:9], root, row["where"])
        _git_identity(root)
        apply_overrides(overrides, root / "params.yaml")
        stages = fmnist_pipeline(pull=True, push=True, jobs=jobs, project=str(root))
        row.update(result_row(root))
        dvc.dvc(root, "exp", "save", "--force", "--name", name, "--message", f"{name}: {' '.join(overrides)}")
        # --force: a rerun of the point records the same results under the same name.
        dvc.dvc(root, "exp", "push", "--force", "--no-cache", "origin", name)
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
