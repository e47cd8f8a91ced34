"""The pull-request workflow (.github/workflows/compare.yml): its `run:` steps, in order, in a fresh
clone of a real git remote whose DVC remote holds the results of main and of a pull request's
branch. GitHub itself is out of reach, so `cml` is a stand-in that keeps the comment it was given."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers import PROJECT, tool_env

pytestmark = pytest.mark.slow(minutes=3)

WORKFLOW = PROJECT / ".github" / "workflows" / "compare.yml"
CML = """#!/bin/sh
# cml comment create FILE: keep FILE where the test reads it
[ "$1 $2" = "comment create" ] || { echo "unexpected: cml $*" >&2; exit 2; }
cp "$3" "$CML_COMMENT"
"""


def test_the_workflow_runs_on_actions_checkout_and_posts_a_comment():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["compare"]["steps"]
    assert [s["uses"].split("@")[0] for s in steps if "uses" in s] == ["actions/checkout", "iterative/setup-cml"]
    assert next(s for s in steps if "uses" in s)["with"]["fetch-depth"] == 0  # the base branch is needed
    assert True in workflow and "pull_request" in workflow[True]  # YAML reads `on:` as True


def test_the_workflows_steps_post_the_verdicts_of_a_pull_request(mlp_retrained, tmp_path):
    origin, dvc_remote = tmp_path / "origin.git", tmp_path / "dvc-remote"
    # A pull request: the MLP trains three epochs (branch more-epochs), main has the tiny pipeline.
    user = mlp_retrained.copy_to(tmp_path / "user")
    user.run("git", "checkout", "-q", "-b", "more-epochs")
    user.run("git", "branch", "-f", "main", "HEAD~1")
    user.run("git", "init", "-q", "--bare", "--initial-branch", "main", str(origin))
    user.run("git", "remote", "add", "origin", str(origin))
    for branch in ("main", "more-epochs"):
        user.run("git", "checkout", "-q", branch)
        for name in ("run", "pyproject.toml", "README.md"):  # what `./run setup` reads
            shutil.copy(PROJECT / name, user.root / name)
        user.run("dvc", "remote", "add", "-d", "-f", "shared", str(dvc_remote))
        user.commit("the repository as on GitHub")
        user.run("git", "push", "-q", "origin", branch)
    user.run("dvc", "push", "--all-branches")

    # actions/checkout with fetch-depth 0: a clone of the branch, origin/main beside it.
    runner = tmp_path / "runner"
    subprocess.run(["git", "clone", "-q", "--branch", "more-epochs", str(origin), str(runner)], check=True)
    (runner / ".venv").symlink_to(PROJECT / ".venv")  # set up already: `./run setup` finds it current
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cml").write_text(CML)
    (bin_dir / "cml").chmod(0o755)
    comment = tmp_path / "comment.md"
    env = {**tool_env(), "PATH": f"{bin_dir}{os.pathsep}{tool_env()['PATH']}", "CML_COMMENT": str(comment),
           "GITHUB_BASE_REF": "main"}  # fmt: skip
    for step in yaml.safe_load(WORKFLOW.read_text())["jobs"]["compare"]["steps"]:
        if "run" not in step:
            continue
        step_env = {key: "" if "${{" in str(value) else str(value) for key, value in step.get("env", {}).items()}
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=runner, env={**env, **step_env},
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, f"{step['name']}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    text = comment.read_text()
    assert "A = origin/main (" in text and "B = HEAD (" in text
    verdicts = re.findall(r"^- \*\*(mlp|cnn): [+-]\d+\.\d\d points .*: (B is better|A is better|no detectable "
                          r"difference)\*\*$", text, re.M)  # fmt: skip
    assert [model for model, _ in verdicts] == ["mlp", "cnn"], text
    assert dict(verdicts)["cnn"] == "no detectable difference"  # the same CNN on both sides
