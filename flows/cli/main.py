"""`fmnist-flow ARGS`: parse (a mistake ends it before anything starts), then run the command under
supervision."""

from __future__ import annotations

import signal
import sys

from flows.cli.args import parse
from flows.cli.commands import COMMANDS
from flows.cli.supervision import supervised
from flows.plumbing.processes import Stop

# How a stop reaches a command's work. Prefect's runner (`serve`) handles SIGTERM by calling its
# async stop from inside its event loop without awaiting it, then exiting mid-loop: it has hung
# there for minutes, pausing its schedules through the API. Ctrl-C's SIGINT takes its clean way
# out (the schedules paused, "Received KeyboardInterrupt, shutting down"): a stop is passed on as
# that, killed after 60 s should even that hang. The other commands' stops are this project's own
# (a sweep's, cancelling its points, can take a busy machine minutes) and are waited for.
STOPS = {"serve": Stop(signal=signal.SIGINT, within=60.0)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    supervised(argv, lambda: COMMANDS[args.command](args), STOPS.get(args.command, Stop()))
