"""The Prefect flow over dvc.yaml: one task per DVC stage, DVC deciding what runs.

Each task runs `dvc repro --single-item STAGE`, so DVC alone decides whether a stage runs, is
skipped or is restored from its run-cache, and DVC alone writes dvc.lock: the flow and
`dvc repro` share one cache and one record.

    python -m flows.pipeline run [--target STAGE]... [--force] [--set train_cnn.epochs=3]... [--jobs 2]
                                 [--pull] [--push]
    python -m flows.pipeline serve --cron "0 2 * * *"      (or --interval SECONDS)
    python -m flows.pipeline push                          (dvc push --run-cache, completed)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

ROOT = Path(__file__).resolve().parents[1]
FLOW_NAME = "fmnist-pipeline"
# Only fetch touches the network; a mirror's hiccup is worth retrying, a training bug is not.
RETRIES = {"fetch": {"retries": 3, "retry_delay_seconds": [2, 5, 15]}}

_STATUS = (
    (re.compile(r"^Running stage '(?P<stage>[^']+)'"), "ran"),
    (re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run"), "restored"),
    (re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping"), "skipped"),
)


@dataclass
class StageResult:
    stage: str
    status: str  # ran | skipped | restored
    seconds: float
    started: float = 0.0  # seconds after the flow began: overlapping stages ran at the same time


def _env() -> dict[str, str]:
    """DVC runs each stage as `python -m stages.X`: that python must be this environment's."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }


def _dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["dvc", *args], cwd=ROOT, env=_env(), capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"dvc {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


def _dvc_streamed(args: list[str], what: str, logger: Any, on_line: Callable[[str], None] | None = None) -> None:
    """Run `dvc ARGS`, every line it prints going to the run log as it comes; raise on failure,
    naming `what` failed and with DVC's last lines."""
    tail: list[str] = []
    with subprocess.Popen(
        ["dvc", *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            logger.info("%s", line)
            tail = [*tail[-19:], line]
            if on_line:
                on_line(line)
    if proc.returncode:
        raise RuntimeError(f"{what} failed (dvc exited {proc.returncode}):\n" + "\n".join(tail))


def stage_graph() -> dict[str, set[str]]:
    """{stage: its upstream stages}, from DVC's own DAG of dvc.yaml."""
    dot = _dvc("dag", "--dot").stdout
    graph: dict[str, set[str]] = {name: set() for name in re.findall(r'^"([^"]+)";$', dot, re.M)}
    for upstream, downstream in re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, re.M):
        graph[downstream].add(upstream)
    return graph


def changed_stages() -> set[str]:
    """Stages that `dvc status` finds changed (deps, params, outs or the stage itself)."""
    return set(json.loads(_dvc("status", "--json").stdout or "{}"))


def check_remote() -> None:
    """Fail before any work when there is no default DVC remote to pull from or push to."""
    if _dvc("remote", "default", check=False).returncode:
        raise ValueError(
            "no default DVC remote to pull from or push to: add one with "
            "`dvc remote add -d shared /path/to/shared/fmnist-cache` (README: sharing the cache)"
        )


def plan(graph: dict[str, set[str]], targets: list[str] | None) -> list[str]:
    """The stages to reproduce, upstream first: `targets` and everything they depend on."""
    unknown = sorted(set(targets or []) - set(graph))
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; dvc.yaml has {', '.join(graph)}")
    wanted, stack = set(), list(targets or graph)
    while stack:
        stage = stack.pop()
        if stage not in wanted:
            wanted.add(stage)
            stack.extend(graph[stage])
    order = TopologicalSorter({s: graph[s] for s in graph}).static_order()
    return [s for s in order if s in wanted]


def apply_overrides(overrides: list[str], path: Path | None = None) -> None:
    """Write `section.key=value` overrides into params.yaml, as `dvc exp run -S` does, keeping
    comments; values are YAML (`3`, `0.5`, `[32, 64]`, `null`). Only existing keys can be set."""
    from ruamel.yaml import YAML  # DVC's own YAML library: round-trips comments and layout

    if not overrides:
        return
    path = path or ROOT / "params.yaml"
    yaml = YAML()
    document = yaml.load(path.read_text())
    for override in overrides:
        key, sep, raw = override.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(f"override {override!r} is not of the form section.key=value")
        node = document
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                allowed = ", ".join(map(str, node)) if isinstance(node, dict) else "none (not a mapping)"
                raise ValueError(f"override {override!r}: params.yaml has no {'.'.join(parts[: depth + 1])}; "
                                 f"keys there: {allowed}")  # fmt: skip
            if depth < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = YAML(typ="safe").load(raw) if raw.strip() else None
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        yaml.dump(document, f)
    os.replace(tmp, path)


# No Prefect caching: whether a stage needs to run is DVC's decision alone.
@task(cache_policy=NO_CACHE)
def repro_stage(
    stage: str, force: bool = False, known_up_to_date: bool = False, pull: bool = False, t0: float = 0.0
) -> StageResult:
    """`dvc repro --single-item STAGE`, its output streamed to the run log line by line.

    `known_up_to_date`: `dvc status` found nothing changed for this stage and nothing upstream
    ran since, so `dvc repro` would only say "didn't change"; that costs a DVC start-up per
    stage, which a no-op run of the whole flow should not pay. `pull`: `dvc repro --pull`, which
    restores a stage from the remote's run-cache, fetching its outputs, when any machine already
    ran it with these params and inputs. `t0`: the flow's start (time.perf_counter()), to place
    the stage on the run's timeline.
    """
    logger = get_run_logger()
    start = time.perf_counter()
    if known_up_to_date and not force:
        logger.info("Stage '%s' didn't change, skipping (dvc status)", stage)
        return StageResult(stage, "skipped", 0.0, round(start - t0, 2))
    status = "skipped"

    def note_status(line: str) -> None:
        nonlocal status
        for pattern, name in _STATUS:
            match = pattern.match(line)
            if match and match["stage"] == stage:
                status = name

    # --wait-for-lock: a stage running beside this one holds DVC's repo lock only while it
    # starts and while it records its results, and this one waits for those moments to pass.
    args = ["--wait-for-lock", "repro", "--single-item", *(["--force"] if force else []), *(["--pull"] if pull else [])]
    args.append(stage)
    _dvc_streamed(args, f"stage {stage}", logger, note_status)
    return StageResult(stage, status, round(time.perf_counter() - start, 2), round(start - t0, 2))


# Pull and push are the only steps besides fetch that touch the network (the remote may be S3).
@task(name="dvc-pull", cache_policy=NO_CACHE, **RETRIES["fetch"])
def pull_artifacts() -> None:
    """The outputs dvc.lock names and the run-cache, from the default remote. `--allow-missing`:
    an empty remote (the first run anywhere) is not an error."""
    _dvc_streamed(["pull", "--run-cache", "--allow-missing"], "dvc pull", get_run_logger())


@task(name="dvc-push", cache_policy=NO_CACHE, **RETRIES["fetch"])
def push_artifacts() -> None:
    """This run's outputs and run-cache to the default remote, for every other clone and worker."""
    share(get_run_logger())


def share(logger: Any) -> None:
    """`dvc push --run-cache`, then the outputs its run records name that it leaves behind."""
    _dvc_streamed(["push", "--run-cache"], "dvc push", logger)
    logger.info("%d more outputs of recorded runs pushed", push_run_outputs())


def push_run_outputs() -> int:
    """Push to the default remote every output that a run in the local run-cache recorded.

    `dvc push --run-cache` (DVC 3.67) sends the run records, but of their outputs only those the
    workspace tracks now, and never a `cache: false` one (metrics, plot data): another machine
    then finds the record and still recomputes the stage, its metrics being nowhere. DVC's CLI
    has no command for this, so it uses DVC's own transfer (dvc is pinned; tested in
    tests/test_shared_cache.py). Returns how many objects were sent.
    """
    import yaml
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    with Repo(str(ROOT)) as repo:
        cache = repo.cache.local
        records = [f for f in Path(repo.stage_cache.cache_dir).rglob("*") if f.is_file()]
        md5s = {out["md5"] for f in records for out in yaml.safe_load(f.read_text()).get("outs", []) if "md5" in out}
        for md5 in [m for m in md5s if m.endswith(".dir") and cache.exists(m)]:  # a directory: its files too
            md5s.update(entry["md5"] for entry in json.loads(Path(cache.oid_to_path(md5)).read_text()))
        present = [HashInfo("md5", md5) for md5 in sorted(md5s) if cache.exists(md5)]
        return len(repo.cloud.push(present).transferred)


def run_stages(
    graph: dict[str, set[str]],
    order: list[str],
    changed: set[str],
    *,
    force: bool,
    jobs: int,
    pull: bool = False,
    t0: float = 0.0,
) -> dict[str, StageResult]:
    """Reproduce `order`'s stages, each as soon as its upstream stages are done, at most `jobs` at once.

    When a stage fails, the stages already running finish (their results land in dvc.lock),
    none is started after it, and its error is raised.
    """
    results: dict[str, StageResult] = {}
    running: dict[PrefectFuture, str] = {}
    pending, failure = list(order), None
    while pending or running:
        ready = [s for s in pending if all(u in results for u in graph[s])] if failure is None else []
        for stage in ready[: max(0, jobs - len(running))]:
            pending.remove(stage)
            upstream_ran = any(results[u].status != "skipped" for u in graph[stage])
            run = repro_stage.with_options(name=stage, task_run_name=stage, **RETRIES.get(stage, {}))
            up_to_date = stage not in changed and not upstream_ran
            future = run.submit(stage, force, known_up_to_date=up_to_date, pull=pull, t0=t0)
            running[future] = stage
        if not running:
            break
        done = next(as_completed(list(running)))
        stage = running.pop(done)
        try:
            results[stage] = done.result()
        except Exception as exc:  # noqa: BLE001 (re-raised below, once the others are done)
            failure = failure or exc
    if failure is not None:
        raise failure
    return results


def metrics_markdown(path: Path) -> str | None:
    """The MLP vs CNN table from evaluate's metrics, or None before evaluate has run."""
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    models = [m for m in ("mlp", "cnn") if m in metrics]
    rows = [
        "| metric | " + " | ".join(m.upper() for m in models) + " |",
        "|---|" + "---:|" * len(models),
        *(
            f"| {key} | " + " | ".join(f"{metrics[m][key]:.4f}" for m in models) + " |"
            for key in ("accuracy", "loss", "macro_f1")
        ),
    ]
    return "## Fashion-MNIST test metrics\n\n" + "\n".join(rows) + "\n"


@flow(name=FLOW_NAME)
def fmnist_pipeline(
    targets: list[str] | None = None,
    force: bool = False,
    overrides: list[str] | None = None,
    jobs: int = 2,
    pull: bool = False,
    push: bool = False,
) -> list[dict[str, Any]]:
    """Reproduce the DVC pipeline, independent stages (train-mlp, train-cnn) at the same time.

    Args:
        targets: stages to reproduce, with everything upstream of them (default: all).
        force: rerun every selected stage even if DVC finds it up to date.
        overrides: `section.key=value` params written into params.yaml first, as `dvc exp run -S`.
        jobs: at most this many stages at once; 1 runs them one after another, as `dvc repro` does.
        pull: take from the default DVC remote whatever any machine already computed: first
            `dvc pull --run-cache`, then each stage with `dvc repro --pull`.
        push: finally send outputs and run-cache to the default DVC remote (`dvc push --run-cache`).
    """
    logger = get_run_logger()
    t0 = time.perf_counter()
    if jobs < 1:
        raise ValueError(f"jobs = {jobs} is not allowed; expected an integer >= 1")
    if pull or push:
        check_remote()
    apply_overrides(overrides or [])
    if pull:
        pull_artifacts()
    with ThreadPoolExecutor(2) as pool:  # two DVC start-ups at once: a no-op run is mostly start-ups
        graph_future, changed_future = pool.submit(stage_graph), pool.submit(changed_stages)
        graph, changed = graph_future.result(), changed_future.result()
    results = run_stages(graph, plan(graph, targets), changed, force=force, jobs=jobs, pull=pull, t0=t0)
    if push:
        push_artifacts()
    rows = [asdict(r) for r in results.values()]
    width = max(len(r["stage"]) for r in rows)
    logger.info(
        "summary (%.1fs, up to %d stages at once):\n%s",
        time.perf_counter() - t0,
        jobs,
        "\n".join(
            f"  {r['stage']:<{width}}  {r['status']:<8}  {r['seconds']:7.1f}s  (from {r['started']:.1f}s)" for r in rows
        ),
    )
    create_table_artifact(key="fmnist-stages", table=rows, description="Each DVC stage: ran, skipped or restored")
    markdown = metrics_markdown(ROOT / "metrics" / "evaluate.json")
    if markdown:
        create_markdown_artifact(key="fmnist-metrics", markdown=markdown, description="MLP vs CNN on the test split")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fmnist-flow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the flow once")
    serve = sub.add_parser("serve", help="serve the flow on a schedule until interrupted")
    sub.add_parser("push", help="dvc push --run-cache, plus the outputs of every recorded run (README)")
    for p in (run, serve):
        p.add_argument("--target", action="append", dest="targets", help="stage to reproduce (repeatable)")
        p.add_argument("--force", action="store_true", help="rerun stages even if up to date")
        p.add_argument("--set", action="append", dest="overrides", metavar="SECTION.KEY=VALUE", default=[])
        p.add_argument(
            "--jobs", type=int, default=2, help="stages run at once, e.g. train-mlp beside train-cnn (default 2)"
        )
        p.add_argument("--pull", action="store_true", help="take what was already computed from the DVC remote")
        p.add_argument("--push", action="store_true", help="finally dvc push --run-cache to the DVC remote")
    when = serve.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 2 * * *" (nightly at 02:00)')
    when.add_argument("--interval", type=float, help="seconds between runs")
    serve.add_argument("--name", default="fmnist-served", help="deployment name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("flows.pipeline")
    if args.command == "push":
        try:
            check_remote()
            share(logger)
        except (ValueError, RuntimeError) as exc:
            logger.error("push failed: %s", str(exc).splitlines()[0])
            sys.exit(1)
        return
    params = {
        "targets": args.targets, "force": args.force, "overrides": args.overrides,
        "jobs": args.jobs, "pull": args.pull, "push": args.push,
    }  # fmt: skip
    if args.command == "run":
        try:
            fmnist_pipeline(**params)
        except Exception as exc:  # the run log holds the details; say what failed in one line
            logger.error("flow failed: %s", str(exc).splitlines()[0])
            sys.exit(1)
    else:
        fmnist_pipeline.serve(name=args.name, cron=args.cron, interval=args.interval, parameters=params)


if __name__ == "__main__":
    main()
