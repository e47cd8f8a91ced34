"""What a sweep checks before any work, each refusal one line saying what to do: the search space
(every key, and every value a trial can take, against the params models), the DVC remote, git
(workers clone the remote at HEAD), the deployment and its work pool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from flows.contract import DEFAULT_DEPLOYMENT, EXPERIMENT_FLOW
from flows.plumbing import git, overrides, remote
from flows.sweep.options import SweepOptions
from flows.sweep.space import Dimension, grid, parse


class SweepError(ValueError):
    """The sweep cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Checked:
    dimensions: list[Dimension]  # the search space
    repository: str  # the git remote's URL, which workers clone
    commit: str  # HEAD's full SHA, on that remote
    pool: str  # the deployment's work pool


def check_git(root: Path, git_remote: str) -> tuple[str, str]:
    """(the git remote's URL, HEAD's full SHA), once HEAD is known to be on that remote: workers
    clone the remote, so the sweep's code and params must be there, exactly as committed."""
    dirty = git.uncommitted(root)
    if dirty:
        files = ", ".join(dirty[:3]) + (", ..." if len(dirty) > 3 else "")
        raise SweepError(f"uncommitted changes ({files}): workers run the commit as pushed; commit and push them first")
    url = git.remote_url(root, git_remote)
    if not url:
        raise SweepError(
            f"no git remote {git_remote!r} for workers to clone: add one with `git remote add "
            f"{git_remote} URL` (a URL every worker reaches)"
        )
    commit = git.head(root)
    if not git.is_on_remote(root, commit, git_remote):
        branch = git.current_branch(root) or "main"
        raise SweepError(
            f"commit {commit[:9]} is not on the git remote {git_remote} ({url}), so no worker can "
            f"clone it: push it first with `git push {git_remote} {branch}`"
        )
    return url, commit


def check_deployment(deployment: str) -> str:
    """Fail when the deployment or its work pool does not exist; returns the pool's name."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise SweepError(
                f"no deployment {deployment!r} on the Prefect server: create it with "
                f"`prefect deploy --name {deployment.split('/')[-1]}` (prefect.yaml)"
            ) from None
        flow_name = client.read_flow(found.flow_id).name
        if flow_name != EXPERIMENT_FLOW:
            raise SweepError(
                f"deployment {deployment!r} runs the flow {flow_name!r}; a sweep needs a deployment of "
                f"{EXPERIMENT_FLOW!r}, such as {DEFAULT_DEPLOYMENT} (prefect.yaml)"
            )
        pool = found.work_pool_name or "(none)"
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise SweepError(
                f"work pool {pool!r} of deployment {deployment!r} does not exist: create it with "
                f"`prefect work-pool create NAME --type process` (or docker, kubernetes) and deploy again"
            ) from None
        return pool


def prepare(root: Path, options: SweepOptions) -> Checked:
    """Everything a sweep checks before any work, beyond its options themselves: the search space
    against params.yaml and the params models, the DVC remote, git, the deployment."""
    overrides.check([], root / "params.yaml")  # every section as it is, as the stages will check it
    dimensions = parse(list(options.sets), root / "params.yaml")
    if options.search == "grid":
        grid(dimensions)  # refuses a value to draw
    remote.check_remote(root, for_workers=True)
    repository, commit = check_git(root, options.git_remote)
    return Checked(dimensions, repository, commit, check_deployment(options.deployment))
