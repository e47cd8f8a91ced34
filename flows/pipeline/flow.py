"""The Prefect flow over dvc.yaml: one task per DVC stage, DVC deciding what runs.

Each task runs `dvc repro --single-item STAGE`, so DVC alone decides whether a stage runs, is
skipped or is restored from its run-cache, and DVC alone writes dvc.lock: the flow and
`dvc repro` share one cache and one record. The stages' tasks: tasks.py; the command line: flows/cli.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.pipeline.tasks import pull_artifacts, push_artifacts, run_stages
from flows.plumbing import dvc, remote
from flows.plumbing.overrides import apply_overrides
from stages.lib import paths
from stages.lib.params import require_integer
from tools.checkout import project_root

FLOW_NAME = "fmnist-pipeline"


def metrics_markdown(path: Path) -> str | None:
    """The MLP vs CNN table from evaluate's metrics, or None before evaluate has run."""
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    models = [m for m in paths.MODELS if m in metrics]
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
    project: str | None = None,
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
        project: the checkout to reproduce (default: the one the run's working directory is in).
    """
    logger = get_run_logger()
    t0 = time.perf_counter()
    require_integer("jobs", jobs, 1)
    root = project_root(Path(project) if project else None)
    if pull or push:
        remote.check_remote(root)
    apply_overrides(overrides or [], root / "params.yaml")
    if pull:
        pull_artifacts(root)
    with ThreadPoolExecutor(2) as pool:  # two DVC start-ups at once: a no-op run is mostly start-ups
        graph_future, changed_future = pool.submit(dvc.stage_graph, root), pool.submit(dvc.changed_stages, root)
        graph, changed = graph_future.result(), changed_future.result()
    results = run_stages(root, graph, dvc.plan(graph, targets), changed, force=force, jobs=jobs, pull=pull, t0=t0)
    if push:
        push_artifacts(root)
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
    markdown = metrics_markdown(paths.in_checkout(paths.EVALUATION, root))
    if markdown:
        create_markdown_artifact(key="fmnist-metrics", markdown=markdown, description="MLP vs CNN on the test split")
    return rows
