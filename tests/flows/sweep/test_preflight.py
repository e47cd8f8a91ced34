"""What a sweep checks before any work, in real git and DVC repositories, each refusal one line saying
what to do (the deployment's checks need a server: tests/flows/sweep/test_flow.py)."""

from __future__ import annotations

import subprocess

import pytest

from flows.plumbing.dvc import DvcError
from flows.plumbing.remote import check_remote
from flows.sweep.preflight import SweepError, check_git
from tests.helpers import tool_env


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, env=tool_env(), check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    """A git repo whose HEAD is on its remote `origin` (a bare repo), with a DVC project."""
    root, remote = tmp_path / "checkout", tmp_path / "origin.git"
    _git(tmp_path, "init", "-q", "--bare", "--initial-branch", "main", str(remote))
    _git(tmp_path, "init", "-q", "-b", "main", str(root))
    (root / "params.yaml").write_text("train_cnn: {epochs: 1}\n")
    subprocess.run(["dvc", "init", "-q"], cwd=root, env=tool_env(), check=True)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "first")
    _git(root, "remote", "add", "origin", str(remote))
    _git(root, "push", "-q", "origin", "main")
    return root


def test_a_commit_on_the_remote_is_what_workers_clone(checkout):
    url, commit = check_git(checkout, "origin")
    assert url.endswith("origin.git") and len(commit) == 40


@pytest.mark.parametrize(
    ("change", "remote", "message"),
    [
        (lambda root: (root / "params.yaml").write_text("train_cnn: {epochs: 2}\n"), "origin",
         "uncommitted changes (params.yaml): workers run the commit as pushed; commit and push them first"),
        (None, "team", "no git remote 'team' for workers to clone: add one with `git remote add team URL`"),
        (lambda root: _git(root, "commit", "-q", "--allow-empty", "-m", "local only"), "origin",
         "is not on the git remote origin ("),
    ],
    ids=["uncommitted", "no-remote", "not-pushed"],
)  # fmt: skip
def test_git_refuses_what_workers_could_not_clone(checkout, change, remote, message):
    if change:
        change(checkout)
    with pytest.raises(SweepError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_git(checkout, remote)


def test_workers_need_a_dvc_remote_in_the_committed_config(checkout):
    with pytest.raises(DvcError, match=r"no default DVC remote in \.dvc/config, so workers could not share"):
        check_remote(checkout, for_workers=True)
    subprocess.run(["dvc", "remote", "add", "--local", "-d", "mine", "/tmp/x"], cwd=checkout, env=tool_env(),
                   check=True)  # fmt: skip
    with pytest.raises(DvcError, match="no default DVC remote in .dvc/config"):  # this machine's alone
        check_remote(checkout, for_workers=True)
    subprocess.run(["dvc", "remote", "add", "-d", "shared", "/tmp/y"], cwd=checkout, env=tool_env(), check=True)
    assert check_remote(checkout, for_workers=True) == "shared"
