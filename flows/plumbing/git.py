"""Talking to git through its command line: what a sweep checks before it starts, and a worker's clone."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from flows.plumbing import processes


class GitError(processes.ToolError):
    """A git command failed; the message's first line says what and why."""


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`git ARGS` in `root`, captured; on failure GitError with git's last line."""
    return processes.run_tool(root, ["git", *args], check=check, error=GitError)


def uncommitted(root: Path) -> list[str]:
    """Tracked files with changes that are not committed."""
    lines = git(root, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    return [line[3:] for line in lines]


def remote_url(root: Path, remote: str) -> str | None:
    return git(root, "remote", "get-url", remote, check=False).stdout.strip() or None


def head(root: Path) -> str:
    """HEAD's full SHA."""
    return git(root, "rev-parse", "HEAD").stdout.strip()


def current_branch(root: Path) -> str | None:
    return git(root, "branch", "--show-current").stdout.strip() or None


def is_on_remote(root: Path, commit: str, remote: str) -> bool:
    """Whether a branch of `remote` (fetched now) contains `commit`."""
    git(root, "fetch", "--quiet", remote)
    branches = git(root, "branch", "--remotes", "--contains", commit).stdout.split()
    return any(b.startswith(f"{remote}/") for b in branches)


def clone_at(repository: str, commit: str, dest: Path) -> None:
    """A fresh clone of `repository` in `dest`, at `commit` (detached)."""
    git(dest.parent, "clone", "--quiet", "--no-checkout", repository, str(dest))
    git(dest, "checkout", "--quiet", "--detach", commit)


def ensure_identity(root: Path) -> None:
    """Give a bare machine (a container) a committer, for the commit `dvc exp save` makes."""
    if git(root, "config", "user.email", check=False).stdout.strip():
        return
    for key, value in (("user.name", "fmnist-flow"), ("user.email", f"fmnist-flow@{socket.gethostname()}")):
        git(root, "config", key, value)


def commit_of(root: Path, revision: str) -> str | None:
    """The full SHA of a commit, branch or tag, or None if git knows no such commit."""
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
    return proc.stdout.strip() or None


def experiment_commit(root: Path, name: str) -> str | None:
    """The commit of the DVC experiment `name` (its ref is refs/exps/.../<name>), or None."""
    refs = git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps/").stdout.splitlines()
    found = [line.split()[0] for line in refs if line.split()[1].rsplit("/", 1)[-1] == name]
    return found[0] if found else None


def experiment_ref(root: Path, name: str) -> str | None:
    """The full ref of the DVC experiment `name` here (refs/exps/<baseline>/<name>), or None."""
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    return next((ref for ref in refs if ref.rsplit("/", 1)[-1] == name), None)


def remote_ref(root: Path, remote: str, ref: str) -> str | None:
    """The commit `ref` points at on `remote` now, or None if the remote has no such ref."""
    listed = git(root, "ls-remote", remote, ref).stdout.split()
    return listed[0] if listed else None


def push_ref(root: Path, remote: str, ref: str, expected: str | None) -> bool:
    """Push `ref` to `remote` if the remote still holds `expected` there (None: no such ref), as one
    compare-and-set (`--force-with-lease`); False if it holds something else by now."""
    lease = f"--force-with-lease={ref}:{expected or ''}"
    proc = git(root, "push", "--quiet", lease, remote, f"{ref}:{ref}", check=False)
    if proc.returncode == 0:
        return True
    if "stale info" in proc.stderr or "rejected" in proc.stderr:
        return False
    raise GitError(f"git push {remote} {ref} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")


def show(root: Path, commit: str, path: str) -> str | None:
    """`path` as committed in `commit`, or None if it is not there."""
    proc = git(root, "show", f"{commit}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None
