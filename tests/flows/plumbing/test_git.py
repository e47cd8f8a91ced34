"""git, as a trial uses it: an experiment's ref pushed only over what the remote held when it looked."""

from __future__ import annotations

import subprocess

from flows.plumbing import git
from tests.helpers import tool_env

REF = "refs/exps/ab/cdef/sweep-1"


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, env=tool_env(), check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def _clone_with_a_commit(remote, path, message):
    _git(path.parent, "clone", "-q", str(remote), str(path))
    _git(path, "commit", "-q", "--allow-empty", "-m", message)
    _git(path, "update-ref", REF, "HEAD")
    return _git(path, "rev-parse", "HEAD")


def test_a_ref_is_pushed_only_over_what_the_remote_held(tmp_path):
    remote = tmp_path / "remote.git"
    _git(tmp_path, "init", "-q", "--bare", str(remote))
    lost = _clone_with_a_commit(remote, tmp_path / "lost", "the run the sweep gave up on")
    rerun = _clone_with_a_commit(remote, tmp_path / "rerun", "the run that replaced it")
    assert git.experiment_ref(tmp_path / "lost", "sweep-1") == REF
    seen_by_lost = git.remote_ref(tmp_path / "lost", "origin", REF)
    assert seen_by_lost is None
    # The rerun saw nothing there either, and pushes first.
    assert git.push_ref(tmp_path / "rerun", "origin", REF, None) is True
    assert git.remote_ref(tmp_path / "rerun", "origin", REF) == rerun
    # The lost run, paused after it looked, comes back and pushes over what it saw: refused.
    assert git.push_ref(tmp_path / "lost", "origin", REF, seen_by_lost) is False
    assert git.remote_ref(tmp_path / "lost", "origin", REF) == rerun
    # A run that saw the rerun's ref may replace it (a later rerun of the point).
    assert git.push_ref(tmp_path / "lost", "origin", REF, rerun) is True
    assert git.remote_ref(tmp_path / "rerun", "origin", REF) == lost
