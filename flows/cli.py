"""The `fmnist-flow` command: run, serve, push and sweep.

fmnist-flow run [--target STAGE]... [--force] [--set train_cnn.epochs=3]... [--jobs 2] [--pull] [--push]
fmnist-flow serve --cron "0 2 * * *"      (or --interval SECONDS)
fmnist-flow push                          (dvc push --run-cache, completed)
fmnist-flow sweep -S train_cnn.learning_rate=0.001,0.0005 -S train_cnn.dense_units=128,256
                  [--deployment fmnist-experiment] [--max-parallel 4] [--name NAME]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from flows import dvc_cli as dvc
from flows import processes
from flows.params import check_keys
from stages.checkout import project_root
from stages.io import StageError

logger = logging.getLogger("fmnist-flow")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; expected an integer >= 1")
    return value


def _parser() -> argparse.ArgumentParser:
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
            "--jobs", type=_positive, default=2, help="stages run at once, e.g. train-mlp beside train-cnn (default 2)"
        )
        p.add_argument("--pull", action="store_true", help="take what was already computed from the DVC remote")
        p.add_argument("--push", action="store_true", help="finally dvc push --run-cache to the DVC remote")
    when = serve.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 2 * * *" (nightly at 02:00)')
    when.add_argument("--interval", type=float, help="seconds between runs")
    serve.add_argument("--name", default="fmnist-served", help="deployment name")

    sweep = sub.add_parser("sweep", help="every point of a -S grid as a DVC experiment, on a Prefect work pool")
    sweep.add_argument(
        "-S",
        "--set-param",
        action="append",
        dest="sets",
        required=True,
        metavar="SECTION.KEY=V1,V2",
        help="values to try, as dvc exp run --queue -S takes them (repeatable: the grid is the product)",
    )
    sweep.add_argument("--deployment", default="fmnist-experiment", help="deployment that runs each point")
    sweep.add_argument("--max-parallel", type=_positive, default=4, help="points at once (default 4)")
    sweep.add_argument("--name", help="sweep name; experiments are NAME-1, NAME-2, ... (default: from commit + grid)")
    sweep.add_argument("--git-remote", default="origin", help="git remote workers clone and push experiments to")
    sweep.add_argument("--jobs", type=_positive, default=2, help="stages at once within a point (default 2)")
    return parser


def _quiet_prefect() -> None:
    """Prefect logs as the process exits ("Stopping temporary server"): the cause stays last."""
    logging.getLogger("prefect").setLevel(logging.WARNING)


def _fail(what: str, exc: BaseException) -> None:
    """The cause in one line, last: the run log above holds the details."""
    _quiet_prefect()
    logger.error("%s failed: %s", what, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    sys.exit(1)


API_TIMEOUT = 15.0  # seconds; Prefect's own client would retry for minutes


def _check_api() -> None:
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


class Stopped(BaseException):
    """SIGTERM (or SIGHUP) outside Prefect's own handling of it: unwinds like Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _stopped(exc: BaseException) -> None:
    """The run was stopped: say what was interrupted and how a rerun resumes it, last; exit 128+N.

    During a flow Prefect turns SIGTERM into its TerminationSignal, and re-sends the signal to
    the handler it replaced (_raise_stopped) once the flow has crashed: what the flow noted on
    its way out is on that exception, our Stopped's context."""
    notes = [n for e in (exc, exc.__context__) if e is not None for n in getattr(e, "__notes__", [])]
    _quiet_prefect()
    logger.error("%s", notes[-1] if notes else f"stopped ({exc}) before any stage was running")
    signum = exc.signum if isinstance(exc, Stopped) else getattr(exc, "signal", signal.SIGINT)
    sys.exit(128 + int(signum))


def _sweep(args: argparse.Namespace) -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        _fail(
            "sweep",
            ValueError(
                "workers need a Prefect server to take points from: start one "
                "(`prefect server start`) and set PREFECT_API_URL"
            ),
        )
    from flows.sweep import deployment_name, fmnist_sweep, format_table, prepare

    try:  # the flow checks too; here a mistake is refused before a flow run starts
        prepare(project_root(), args.sets, deployment_name(args.deployment), args.git_remote)
    except Exception as exc:  # noqa: BLE001 (a mistake of the user's or an unreachable server: one line)
        _fail("sweep", exc)
    try:
        table = fmnist_sweep(
            sets=args.sets,
            deployment=args.deployment,
            max_parallel=args.max_parallel,
            name=args.name,
            git_remote=args.git_remote,
            jobs=args.jobs,
        )
    except Exception as exc:  # noqa: BLE001
        _fail("sweep", exc)
    except BaseException as exc:  # stopped: Ctrl-C, SIGTERM, a cancellation
        _stopped(exc)
    logger.info("leaderboard (best first):\n%s", format_table(table))
    failed = [r for r in table if r["status"] != "done"]
    if failed:
        logger.error(
            "%d of %d points failed (%s: %s); run the same command again to retry them, finished points are restored",
            len(failed),
            len(table),
            failed[0]["experiment"],
            failed[0]["error"],
        )
        sys.exit(1)
    logger.info("all %d points are experiments here now: dvc exp show; keep one with dvc exp apply NAME", len(table))


SUPERVISED = "FMNIST_FLOW_SUPERVISED"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)  # a mistake in the arguments is refused before anything starts
    if os.environ.get(SUPERVISED) != "1":
        # The work runs in a child that this process outlives: stopping this process (Ctrl-C,
        # SIGTERM, even SIGKILL) stops the run's stages, and nothing the run started stays running.
        env = {**os.environ, SUPERVISED: "1"}
        sys.exit(processes.supervise([sys.executable, "-m", "flows", *argv], env))
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGHUP, _raise_stopped)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request otherwise
    if args.command != "push":
        try:
            _check_api()
        except RuntimeError as exc:
            _fail(args.command, exc)
    if args.command == "sweep":
        _sweep(args)
        return
    try:
        root = project_root()
    except StageError as exc:
        _fail(args.command, exc)
    if args.command == "push":
        try:
            dvc.check_remote(root)
            dvc.share(root, logger)
        except (ValueError, RuntimeError) as exc:
            _fail("push", exc)
        return
    try:  # refused here, before Prefect starts a server or a run
        dvc.plan(dvc.stage_names(root), args.targets)
        check_keys(args.overrides, root / "params.yaml")
    except ValueError as exc:
        _fail(args.command, exc)
    from flows.pipeline import fmnist_pipeline

    params = {
        "targets": args.targets,
        "force": args.force,
        "overrides": args.overrides,
        "jobs": args.jobs,
        "pull": args.pull,
        "push": args.push,
    }
    if args.command == "run":
        try:
            fmnist_pipeline(**params, project=str(root))
        except Exception as exc:  # noqa: BLE001 (the run log holds the details)
            _fail("flow", exc)
        except BaseException as exc:  # stopped: Ctrl-C, SIGTERM, a cancellation
            _stopped(exc)
    else:
        fmnist_pipeline.serve(name=args.name, cron=args.cron, interval=args.interval, parameters=params)


if __name__ == "__main__":
    main()
