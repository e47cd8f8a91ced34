"""`python -m flows ...` is `fmnist-flow ...`."""

from flows.cli import main

main()
