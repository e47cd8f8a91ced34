"""`fmnist-flow ARGS`: parse (a mistake ends it before anything starts), then run the command under
supervision."""

from __future__ import annotations

import sys

from flows.cli.args import parse
from flows.cli.commands import COMMANDS
from flows.cli.supervision import supervised


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    supervised(argv, lambda: COMMANDS[args.command](args))
