"""The outputs of every recorded run pushed to a DVC remote, on a real DVC repo of one tiny stage and a
local remote: the one place DVC's internals are used (`push_objects`) fails here, saying so, when a
DVC upgrade changes them, and so does what DVC's own push leaves behind, should DVC start pushing it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from flows.plumbing.remote import push_objects, push_run_outputs
from tests.helpers import tool_env

PIPELINE = {
    "stages": {
        "make": {
            "cmd": "python make.py",
            "deps": ["make.py"],
            "params": ["n"],
            "outs": ["out"],  # a directory: its .dir listing and its files
            "metrics": [{"metrics.json": {"cache": False}}],
        }
    }
}
MAKE = """import json, pathlib, yaml
n = yaml.safe_load(open("params.yaml"))["n"]
pathlib.Path("out").mkdir(exist_ok=True)
for name in ("a", "b"):
    pathlib.Path("out", name + ".txt").write_text(f"{name} {n}")
pathlib.Path("metrics.json").write_text(json.dumps({"n": n}))
"""


def run(root: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=root, env=tool_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def objects(store: Path) -> set[str]:
    """The md5 of every object in a DVC cache or remote (files/md5/ab/cdef...)."""
    return {f.parent.name + f.name for f in (store / "files" / "md5").glob("*/*")}


def recorded(cache: Path) -> set[str]:
    """The md5s the run-cache's records name, and the files of the directories among them."""
    named = {
        out["md5"] for f in (cache / "runs").rglob("*") if f.is_file() for out in yaml.safe_load(f.read_text())["outs"]
    }
    listed = {e["md5"] for md5 in named if md5.endswith(".dir")
              for e in json.loads((cache / "files" / "md5" / md5[:2] / md5[2:]).read_text())}  # fmt: skip
    return named | listed


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two runs of the stage (n=1, then n=2), the second committed, `dvc push --run-cache` done."""
    root = tmp_path / "repo"
    root.mkdir()
    run(root, "git", "init", "-q", "-b", "main")
    run(root, "dvc", "init", "-q")
    run(root, "dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    (root / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    (root / "make.py").write_text(MAKE)
    for n in (1, 2):
        (root / "params.yaml").write_text(f"n: {n}\n")
        run(root, "dvc", "repro", "-q")
        run(root, "git", "add", "-A")
        run(root, "git", "commit", "-q", "-m", f"n = {n}")
    run(root, "dvc", "push", "-q", "--run-cache")
    return root


def test_the_outputs_of_every_recorded_run_reach_the_remote_and_restore_a_run_elsewhere(repo, tmp_path):
    cache, remote = repo / ".dvc" / "cache", tmp_path / "remote"
    assert len(recorded(cache)) == 8, "two runs, each a directory (.dir and 2 files) and metrics.json"
    left = recorded(cache) - objects(remote)
    assert left, ("`dvc push --run-cache` now pushes the outputs of every recorded run itself: "
                  "push_run_outputs may go (flows/plumbing/remote.py)")  # fmt: skip
    assert push_run_outputs(repo) == len(left)
    assert recorded(cache) <= objects(remote)
    assert push_run_outputs(repo) == 0  # all there already

    # A fresh clone given the first run's params restores that run from the remote, its metrics included.
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    (clone / "params.yaml").write_text("n: 1\n")
    out = run(clone, "dvc", "repro", "--pull")
    assert "Stage 'make' is cached - skipping run" in out and "Running stage" not in out, out
    assert json.loads((clone / "metrics.json").read_text()) == {"n": 1}
    assert (clone / "out" / "a.txt").read_text() == "a 1"


def test_dvcs_internals_push_the_objects_asked_for_and_no_others(repo, tmp_path):
    """What `push_objects` relies on (DVC 3.67: `dvc.repo.Repo`, `Repo.cloud.push` of dvc_data's
    `HashInfo`, its result's `transferred`): if an upgrade changed it, this fails with push_objects's
    DvcError naming it, or with the counts below."""
    cache, remote = repo / ".dvc" / "cache", tmp_path / "remote"
    before = objects(remote)
    wanted = sorted(recorded(cache) - before)[:2]
    assert push_objects(repo, wanted) == 2
    assert objects(remote) == before | set(wanted)
    assert push_objects(repo, wanted) == 0 and push_objects(repo, []) == 0
