"""`python -m flows ...` is `fmnist-flow ...`."""

from flows.cli.main import main

main()
