"""`fmnist-flow`'s commands, each a function of its parsed arguments: run, serve, push, sweep and
compare. A command's mistakes end in one line (supervision.fail); a stop says what it stopped."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from flows.cli.supervision import api_gone, fail, stopped
from flows.plumbing import dvc, overrides, remote
from stages.lib.files import write_text
from stages.lib.stage import StageError
from tools.checkout import project_root

logger = logging.getLogger("fmnist-flow")
API_TIMEOUT = 15.0  # seconds; Prefect's own client would retry for minutes


def check_api() -> None:
    """A Prefect API that PREFECT_API_URL names must answer, and soon; unset, Prefect runs its own."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=API_TIMEOUT).raise_for_status()
    except httpx.HTTPError as exc:
        reason = "did not answer" if isinstance(exc, httpx.TimeoutException) else f"failed ({exc})"
        raise RuntimeError(
            f"the Prefect API at {url} {reason} within {API_TIMEOUT:.0f}s: start it (`prefect server start`) "
            "or unset PREFECT_API_URL to run on Prefect's embedded server"
        ) from None


def _api_answers(command: str) -> None:
    try:
        check_api()
    except RuntimeError as exc:
        fail(command, exc)


def _pipeline_params(args: argparse.Namespace) -> tuple[str, dict]:
    """The checkout and the pipeline flow's params; refused here, before Prefect starts a server or a run."""
    try:
        root = project_root()
        dvc.plan(dvc.stage_names(root), args.targets)
        overrides.check(args.overrides, root / "params.yaml")  # every section, as the stages will
    except (ValueError, StageError) as exc:
        fail(args.command, exc)
    params = {"targets": args.targets, "force": args.force, "overrides": args.overrides, "jobs": args.jobs,
              "pull": args.pull, "push": args.push}  # fmt: skip
    return str(root), params


def run(args: argparse.Namespace) -> None:
    _api_answers("run")
    project, params = _pipeline_params(args)
    from flows.pipeline.flow import fmnist_pipeline

    try:
        fmnist_pipeline(**params, project=project)
    except Exception as exc:  # noqa: BLE001 (the run log holds the details)
        fail("flow", exc)
    except BaseException as exc:  # stopped: Ctrl-C, SIGTERM, a cancellation
        stopped(exc)


def serve(args: argparse.Namespace) -> None:
    _api_answers("serve")
    _, params = _pipeline_params(args)
    from flows.pipeline.flow import fmnist_pipeline

    # One run at a time, as the deployments have (prefect.yaml): two in one checkout only collide
    # on DVC's locks. A run that comes due while one is running starts when it ends.
    fmnist_pipeline.serve(name=args.name, cron=args.cron, interval=args.interval, parameters=params, limit=1)


def push(args: argparse.Namespace) -> None:
    try:
        root = project_root()
        remote.check_remote(root)
        remote.share(root, logger)
    except (ValueError, RuntimeError, StageError) as exc:
        fail("push", exc)


def sweep(args: argparse.Namespace) -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        fail("sweep", ValueError("workers need a Prefect server to take points from: start one "
                                 "(`prefect server start`) and set PREFECT_API_URL"))  # fmt: skip
    # The sweep waits out an unanswering API itself (--api-outage); each call need not retry for a
    # minute on top (Prefect's default: 5 retries, 2 to 32 s apart). Four (2 to 16 s apart, 30 s in
    # all) still carry a busy server's bursts of 503s (SQLite under load).
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "4")
    _api_answers("sweep")
    from flows.sweep.preflight import prepare

    options = args.options
    try:  # refused before a flow run starts
        root = project_root()
        checked = prepare(root, options)
    except Exception as exc:  # noqa: BLE001 (a mistake of the user's or an unreachable server: one line)
        fail("sweep", exc)
    # The sweep's own modules (Optuna's samplers, SciPy, pandas, Matplotlib, DVC's API) only now: a
    # refusal above costs about 2 CPU-seconds, where it took 4.5 with these imports first.
    import httpx

    from flows.sweep.flow import fmnist_sweep
    from flows.sweep.leaderboard import format_table
    from flows.sweep.watch import ApiGone

    try:
        table = fmnist_sweep(options, checked, project=str(root))
    except ApiGone as exc:
        api_gone(str(exc).splitlines()[0])
    except httpx.TransportError as exc:
        api_gone(f"the Prefect API at {PREFECT_API_URL.value()} did not answer ({exc}): start it again and run the "
                 "same sweep to resume (finished points are restored)")  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        fail("sweep", exc)
    except BaseException as exc:  # stopped: Ctrl-C, SIGTERM, a cancellation
        stopped(exc)
    logger.info("leaderboard (best first):\n%s", format_table(table, options.objective))
    failed = table[~table["status"].isin(["done", "pruned"])]
    if not failed.empty:
        first = failed.iloc[0]
        logger.error("%d of %d points failed (%s: %s); run the same command again to retry them, finished points "
                     "are restored", len(failed), len(table), first["experiment"], first["error"])  # fmt: skip
        sys.exit(1)
    done = int((table["status"] == "done").sum())
    pruned = f" ({len(table) - done} pruned: no experiments)" if done < len(table) else ""
    logger.info("all %d points are experiments here now%s: dvc exp show; keep one with dvc exp apply NAME",
                done, pruned)  # fmt: skip


def compare(args: argparse.Namespace) -> None:
    from flows.compare import render
    from flows.compare.result import compare as compare_revisions

    try:
        result = compare_revisions(project_root(), args.a, args.b, pictures=args.html is not None)
        if args.html:
            write_text(args.html, render.render_html(result))
    except (ValueError, RuntimeError, StageError) as exc:  # a revision that cannot be compared: one line
        fail("compare", exc)
    as_text = render.render_json if args.json else render.render_markdown if args.md else render.render_text
    sys.stdout.write(as_text(result))
    if args.html:
        logger.info("pictures: %s", args.html)


COMMANDS = {"run": run, "serve": serve, "push": push, "sweep": sweep, "compare": compare}
