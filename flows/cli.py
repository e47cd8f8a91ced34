"""The `fmnist-flow` command: run, serve, push, sweep and compare.

fmnist-flow run [--target STAGE]... [--force] [--set train_cnn.epochs=3]... [--jobs 2] [--pull] [--push]
fmnist-flow serve --cron "0 2 * * *"      (or --interval SECONDS)
fmnist-flow push                          (dvc push --run-cache, completed)
fmnist-flow sweep -S train_cnn.learning_rate=0.001,0.0005 -S train_cnn.dense_units=128,256
                  [--deployment fmnist-experiment] [--max-parallel 4] [--name NAME]
fmnist-flow compare [A] [B] [--md | --json] [--html FILE]   (default: HEAD against the workspace)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from flows import dvc_cli as dvc
from flows import processes, remote
from flows.overrides import check_keys
from stages.lib.checkout import project_root
from stages.lib.files import write_text
from stages.lib.params import require_integer
from stages.lib.stage import LOG_FORMAT, StageError

logger = logging.getLogger("fmnist-flow")


def _integer(minimum: int):
    """An argparse type: an integer >= `minimum`, refused in the words of a params error."""

    def parse(text: str) -> int:
        try:
            return require_integer(None, int(text) if text.lstrip("-").isdigit() else text, minimum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


_positive = _integer(1)


def _seconds(minimum: float):
    """An argparse type: a number of seconds >= `minimum`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        if value is None or not value >= minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected a number of seconds >= {minimum:g}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmnist-flow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the flow once")
    serve = sub.add_parser("serve", help="serve the flow on a schedule until interrupted")
    sub.add_parser("push", help="dvc push --run-cache, plus the outputs of every recorded run (docs/sharing.md)")
    compare = sub.add_parser(
        "compare", help="is the difference between two revisions real? (their test predictions, nothing rerun)"
    )
    compare.add_argument("a", nargs="?", default="HEAD", help="a commit, branch, tag or DVC experiment (default HEAD)")
    compare.add_argument("b", nargs="?", default="workspace", help="the same, or `workspace` (the default)")
    form = compare.add_mutually_exclusive_group()
    form.add_argument("--md", action="store_true", help="Markdown, for a pull-request comment")
    form.add_argument("--json", action="store_true", help="JSON: per model under `models`, per class, MLP vs CNN")
    compare.add_argument("--html", metavar="FILE", type=Path, help="also write a page with pictures to FILE")
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

    sweep = sub.add_parser("sweep", help="trials of a search as DVC experiments, on a Prefect work pool")
    sweep.add_argument(
        "-S",
        "--set-param",
        action="append",
        dest="sets",
        required=True,
        metavar="SECTION.KEY=VALUES",
        help="values to try, as dvc exp run -S takes them: a,b,c, choice(a,b), range(start,stop[,step]), "
        "interval(low,high), tag(log, interval(low,high)) (repeatable; a grid is the product)",
    )
    sweep.add_argument("--search", choices=("grid", "random", "tpe"), default="grid",
                       help="every listed point (default), or Optuna drawing --trials points")  # fmt: skip
    sweep.add_argument("--trials", type=_positive, help="how many trials random and TPE searches draw")
    sweep.add_argument("--seed", type=_integer(0), default=0, help="seeds the search (default 0)")
    sweep.add_argument("--objective", choices=("cnn", "mlp"), default="cnn",
                       help="the model whose validation accuracy is maximised (default cnn)")  # fmt: skip
    sweep.add_argument("--prune", choices=("median", "none"),
                       help="stop trials below the median of finished ones at the same epoch "
                       "(default: median for random and tpe, none for grid)")  # fmt: skip
    sweep.add_argument("--prune-after", type=_positive, default=2,
                       help="trials that must finish before any is pruned (default 2)")  # fmt: skip
    sweep.add_argument(
        "--deployment", help="deployment of the experiment flow that runs each point (default: fmnist-experiment)"
    )
    sweep.add_argument("--max-parallel", type=_positive, default=4, help="points at once (default 4)")
    sweep.add_argument("--name", help="sweep name; experiments are NAME-1, NAME-2, ... (default: from commit + grid)")
    sweep.add_argument("--git-remote", default="origin", help="git remote workers clone and push experiments to")
    sweep.add_argument("--jobs", type=_positive, default=2, help="stages at once within a point (default 2)")
    sweep.add_argument(
        "--retries", type=_integer(0), default=2, help="runs again of a point whose machine is lost (default 2)"
    )
    sweep.add_argument(
        # At least two of the 30-s heartbeats (flows/watch.py), so that one late heartbeat loses no point.
        "--lost-after", type=_seconds(60), default=120.0, metavar="SECONDS",
        help="a running point silent this long is lost and runs again elsewhere (default 120; heartbeats every 30)",
    )  # fmt: skip
    sweep.add_argument(
        "--api-outage", type=_seconds(10), default=90.0, metavar="SECONDS",
        help="how long the Prefect API may not answer before the sweep stops, to be started again (default 90)",
    )  # fmt: skip
    return parser


def _quiet_prefect() -> None:
    """Prefect logs as the process exits ("Stopping temporary server"): the cause stays last."""
    logging.getLogger("prefect").setLevel(logging.WARNING)


# Prefect's embedded server migrates its database on a first start, which takes a busy 2-core
# machine longer than the 20 s Prefect waits by default.
EMBEDDED_SERVER_WAIT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
os.environ.setdefault(EMBEDDED_SERVER_WAIT, "180")


def _fail(what: str, exc: BaseException) -> None:
    """The cause in one line, last: the run log above holds the details."""
    _quiet_prefect()
    cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "attempting to connect to ephemeral Prefect API server" in cause:
        cause = (
            f"Prefect's embedded server did not start within {os.environ[EMBEDDED_SERVER_WAIT]}s: start a server "
            f"(`prefect server start`) and set PREFECT_API_URL, or give it longer ({EMBEDDED_SERVER_WAIT})"
        )
    logger.error("%s failed: %s", what, cause)
    sys.exit(1)


def _api_gone(exc: BaseException) -> None:
    """The Prefect API went away for good during a sweep: one line naming it, and out at once
    (Prefect's exit handlers would go on trying it for minutes, and print their own last line)."""
    from prefect.settings import PREFECT_API_URL

    logging.disable(logging.CRITICAL)  # the point threads and Prefect's report the dead API too
    message = str(exc).splitlines()[0] if type(exc).__name__ == "ApiGone" else (
        f"the Prefect API at {PREFECT_API_URL.value()} did not answer ({exc}): start it again and run the same "
        "sweep to resume (finished points are restored)"
    )  # fmt: skip
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "sweep failed: %s", (message,), None)
    handlers = logging.getLogger().handlers
    for handler in handlers:  # held until the exit: a thread already past the check cannot write after us
        handler.acquire()
    for handler in handlers:
        handler.emit(record)
        handler.flush()
    os._exit(1)


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
    import httpx

    from flows.leaderboard import format_table
    from flows.preflight import DEFAULT_DEPLOYMENT, deployment_name, prepare
    from flows.sweep import fmnist_sweep
    from flows.watch import ApiGone

    args.deployment = args.deployment or DEFAULT_DEPLOYMENT
    try:  # the flow checks too; here a mistake is refused before a flow run starts
        prepare(project_root(), args.sets, deployment_name(args.deployment), args.git_remote, search=args.search,
                trials=args.trials, objective=args.objective)  # fmt: skip
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
            retries=args.retries,
            lost_after=args.lost_after,
            api_outage=args.api_outage,
            search=args.search,
            trials=args.trials,
            seed=args.seed,
            objective=args.objective,
            prune=args.prune,
            prune_after=args.prune_after,
        )
    except (ApiGone, httpx.TransportError) as exc:
        _api_gone(exc)
    except Exception as exc:  # noqa: BLE001
        _fail("sweep", exc)
    except BaseException as exc:  # stopped: Ctrl-C, SIGTERM, a cancellation
        _stopped(exc)
    logger.info("leaderboard (best first):\n%s", format_table(table))
    failed = [r for r in table if r["status"] not in ("done", "pruned")]
    if failed:
        logger.error(
            "%d of %d points failed (%s: %s); run the same command again to retry them, finished points are restored",
            len(failed),
            len(table),
            failed[0]["experiment"],
            failed[0]["error"],
        )
        sys.exit(1)
    done = [r for r in table if r["status"] == "done"]
    pruned = f" ({len(table) - len(done)} pruned: no experiments)" if len(done) < len(table) else ""
    logger.info("all %d points are experiments here now%s: dvc exp show; keep one with dvc exp apply NAME",
                len(done), pruned)  # fmt: skip


def _compare(args: argparse.Namespace) -> None:
    from flows import compare

    try:
        result = compare.compare(project_root(), args.a, args.b, pictures=args.html is not None)
        if args.html:
            write_text(args.html, compare.render_html(result))
    except (ValueError, RuntimeError, StageError) as exc:  # a revision that cannot be compared: one line
        _fail("compare", exc)
    render = compare.render_json if args.json else compare.render_markdown if args.md else compare.render_text
    sys.stdout.write(render(result))
    if args.html:
        logger.info("pictures: %s", args.html)


SUPERVISED = "FMNIST_FLOW_SUPERVISED"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)  # a mistake in the arguments is refused before anything starts
    if not os.environ.get(SUPERVISED, "").isdigit():
        # The work runs in a child that this process outlives: stopping this process (Ctrl-C,
        # SIGTERM, even SIGKILL) stops the run's stages, and nothing the run started stays running.
        env = {**os.environ, SUPERVISED: str(os.getpid())}  # the child watches this process
        code = processes.supervise([sys.executable, "-m", "flows", *argv], env)
        # A DVC among what the child left, had it to be killed, may have left its lock table cut
        # short: repaired here, quietly (the last line stays the run's own).
        with contextlib.suppress(StageError, OSError):
            dvc.heal_rwlock(project_root())
        sys.exit(code)
    # SIGKILL to `fmnist-flow`: this and all it started end at once (a sweep's points, on workers, go on)
    processes.end_with_supervisor(int(os.environ[SUPERVISED]))
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGHUP, _raise_stopped)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request otherwise
    if args.command == "compare":
        _compare(args)
        return
    if args.command == "sweep":
        # The sweep waits out an unanswering API itself (--api-outage); each call need not retry
        # for a minute on top (Prefect's default: 5 retries, 2 to 32 s apart). Four (2 to 16 s
        # apart, 30 s in all) still carry a busy server's bursts of 503s (SQLite under load).
        os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "4")
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
            remote.check_remote(root)
            remote.share(root, logger)
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
        # One run at a time, as the deployments have (prefect.yaml): two in one checkout only collide
        # on DVC's locks. A run that comes due while one is running starts when it ends.
        fmnist_pipeline.serve(name=args.name, cron=args.cron, interval=args.interval, parameters=params, limit=1)


if __name__ == "__main__":
    main()
