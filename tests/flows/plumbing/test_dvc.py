"""DVC's lock table left unreadable by a DVC killed while writing it, in a real DVC repository."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from flows.plumbing.dvc import RWLOCK, heal_rwlock
from tests.helpers import tool_env


def run(root, *args, check=True):
    proc = subprocess.run(args, cwd=root, env=tool_env(), capture_output=True, text=True)
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def repo(tmp_path):
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, "dvc", "init", "-q")
    run(tmp_path, "dvc", "stage", "add", "-q", "-n", "hello", "-o", "out.txt", "echo hello > out.txt")
    run(tmp_path, "dvc", "repro")  # DVC writes its lock table as it runs the stage
    assert (tmp_path / RWLOCK).exists()
    return tmp_path


def test_an_emptied_lock_table_fails_every_dvc_command_until_it_is_removed(repo):
    (repo / RWLOCK).write_text("")  # what a DVC killed between truncating and writing it leaves
    failed = run(repo, "dvc", "repro", "-f", check=False)
    assert failed.returncode != 0 and "Unable to read RWLock-file" in failed.stderr
    assert heal_rwlock(repo) is True
    assert not (repo / RWLOCK).exists()
    run(repo, "dvc", "repro", "-f")


def test_a_readable_lock_table_is_left_alone(repo):
    before = (repo / RWLOCK).read_text()
    assert heal_rwlock(repo) is False
    assert (repo / RWLOCK).read_text() == before


def test_a_table_under_dvcs_guard_is_waited_for_and_not_taken_for_broken(repo):
    (repo / RWLOCK).write_text('{"read": {}, "wri')  # as a reader would see it half-written
    guard = repo / RWLOCK.with_name("rwlock.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(3)", str(guard)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        assert heal_rwlock(repo, timeout=0.5) is False  # still held: somebody is writing it
        assert (repo / RWLOCK).exists()
        assert heal_rwlock(repo, timeout=30) is True  # the holder let go and left it broken
        assert time.monotonic() - start >= 2
    finally:
        holder.kill()
        holder.wait()
