"""`fmnist-flow ARGS`: parse (a mistake ends it before anything starts), then run the command under
supervision."""

from __future__ import annotations

import sys

from flows.cli.args import parse
from flows.cli.commands import COMMANDS
from flows.cli.supervision import supervised

# Prefect's runner (`serve`) stops on SIGTERM by pausing its schedules through the API, and has been
# seen to hang there for minutes (its control channel cancelled under it): a service manager's stop
# must not wait on that. The other commands' stops are this project's own (a sweep's, cancelling
# its points, can take a busy machine minutes), and are waited for.
STOP_WITHIN = {"serve": 60.0}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    supervised(argv, lambda: COMMANDS[args.command](args), STOP_WITHIN.get(args.command))
