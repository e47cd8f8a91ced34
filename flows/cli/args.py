"""`fmnist-flow`'s arguments: the parser, and each command's options checked as it is parsed, so a
mistake is refused (exit 2, one line) before anything starts."""

from __future__ import annotations

import argparse
from pathlib import Path

from flows.sweep.options import DEFAULTS, SweepOptions
from stages.lib.params import require_integer

USAGE = """\
fmnist-flow run [--target STAGE]... [--force] [--set train_cnn.epochs=3]... [--jobs 2] [--pull] [--push]
fmnist-flow serve --cron "0 2 * * *"      (or --interval SECONDS)
fmnist-flow push                          (dvc push --run-cache, completed)
fmnist-flow sweep -S train_cnn.learning_rate=0.001,0.0005 -S train_cnn.dense_units=128,256
                  [--search grid|random|tpe] [--trials N] [--deployment fmnist-experiment] [--max-parallel 4]
                  [--csv leaderboard.csv]
fmnist-flow compare [A] [B] [--md | --json] [--html FILE]   (default: HEAD against the workspace)"""


def _integer(minimum: int):
    """An argparse type: an integer >= `minimum`, refused in the words of a params error."""

    def parse(text: str) -> int:
        try:
            return require_integer(None, int(text) if text.lstrip("-").isdigit() else text, minimum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected an integer") from None


def _pipeline_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--target", action="append", dest="targets", help="stage to reproduce (repeatable)")
    command.add_argument("--force", action="store_true", help="rerun stages even if up to date")
    command.add_argument("--set", action="append", dest="overrides", metavar="SECTION.KEY=VALUE", default=[])
    command.add_argument("--jobs", type=_integer(1), default=2,
                         help="stages run at once, e.g. train-mlp beside train-cnn (default 2)")  # fmt: skip
    command.add_argument("--pull", action="store_true", help="take what was already computed from the DVC remote")
    command.add_argument("--push", action="store_true", help="finally dvc push --run-cache to the DVC remote")


def _sweep_options(sweep: argparse.ArgumentParser) -> None:
    """The sweep's flags; their defaults are SweepOptions's alone (None here: not given)."""
    d = DEFAULTS
    sweep.add_argument("-S", "--set-param", action="append", dest="sets", required=True,
                       metavar="SECTION.KEY=VALUES", help="values to try, as dvc exp run -S takes them: a,b,c, "
                       "choice(a,b), range(start,stop[,step]), interval(low,high), tag(log, interval(low,high)) "
                       "(repeatable; a grid is the product)")  # fmt: skip
    sweep.add_argument("--search", help=f"grid: every listed point (default {d['search']}); random or tpe: Optuna "
                       "drawing --trials points")  # fmt: skip
    sweep.add_argument("--trials", type=_whole, help="how many trials random and TPE searches draw")
    sweep.add_argument("--seed", type=_whole, help=f"seeds the search (default {d['seed']})")
    sweep.add_argument("--objective", help=f"cnn or mlp: the model whose validation accuracy is maximised "
                       f"(default {d['objective']})")  # fmt: skip
    sweep.add_argument("--prune", help="median: stop trials below the median of finished ones at the same epoch; "
                       "none (default: median for random and tpe, none for grid)")  # fmt: skip
    sweep.add_argument("--prune-after", type=_whole,
                       help=f"trials that must finish before any is pruned (default {d['prune_after']})")  # fmt: skip
    sweep.add_argument("--deployment", help=f"deployment of the experiment flow that runs each point "
                       f"(default {d['deployment']})")  # fmt: skip
    sweep.add_argument("--max-parallel", type=_whole, help=f"points at once (default {d['max_parallel']})")
    sweep.add_argument("--name", help="sweep name; experiments are NAME-1, NAME-2, ... (default: from commit + grid)")
    sweep.add_argument("--git-remote", help=f"git remote workers clone and push experiments to "
                       f"(default {d['git_remote']})")  # fmt: skip
    sweep.add_argument("--jobs", type=_whole, help=f"stages at once within a point (default {d['jobs']})")
    sweep.add_argument("--retries", type=_whole,
                       help=f"runs again of a point whose machine is lost (default {d['retries']})")  # fmt: skip
    sweep.add_argument("--lost-after", type=_number, metavar="SECONDS",
                       help=f"a running point silent this long is lost and runs again elsewhere "
                       f"(default {d['lost_after']:g}; heartbeats every 30)")  # fmt: skip
    sweep.add_argument("--api-outage", type=_number, metavar="SECONDS",
                       help=f"how long the Prefect API may not answer before the sweep stops, to be started again "
                       f"(default {d['api_outage']:g})")  # fmt: skip
    sweep.add_argument("--csv", type=Path, metavar="PATH", help="write the whole leaderboard there as CSV, and the "
                       "search's pictures beside it (default: sweeps/NAME/leaderboard.csv in the project)")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmnist-flow", description="Run, serve, push, sweep and compare the "
                                     "Fashion-MNIST pipeline on Prefect.", usage=USAGE)  # fmt: skip
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
    for command in (run, serve):
        _pipeline_options(command)
    when = serve.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron schedule, e.g. "0 2 * * *" (nightly at 02:00)')
    when.add_argument("--interval", type=float, help="seconds between runs")
    serve.add_argument("--name", default="fmnist-served", help="deployment name")
    _sweep_options(sub.add_parser("sweep", help="trials of a search as DVC experiments, on a Prefect work pool"))
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments; a sweep's as `options` (SweepOptions). Exits 2 with one line on a mistake."""
    args_parser = parser()
    args = args_parser.parse_args(argv)
    if args.command == "sweep":
        given = {key: value for key, value in vars(args).items() if key in DEFAULTS and value is not None}
        try:
            args.options = SweepOptions(sets=tuple(args.sets), **given)
        except ValueError as exc:
            args_parser.error(str(exc))
    return args
