"""fmnist-flow's arguments: each command's options built and checked as they are parsed, a mistake one
line and exit 2 before anything starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flows.cli.args import parse
from flows.sweep.options import DEFAULTS, SweepOptions, flag_of


def test_the_command_line_builds_the_options_with_their_own_defaults():
    args = parse(["sweep", "-S", "train_cnn.epochs=1,2", "-S", "train_cnn.seed=1", "--retries", "0",
                  "--lost-after", "90"])  # fmt: skip
    assert args.options == SweepOptions(sets=("train_cnn.epochs=1,2", "train_cnn.seed=1"), retries=0, lost_after=90.0)
    resolved = ("retries", "lost_after", "deployment", "prune")  # given, or resolved from their defaults
    unchanged = {key: value for key, value in DEFAULTS.items() if key not in resolved}
    assert {key: getattr(args.options, key) for key in unchanged} == unchanged
    assert flag_of("max_parallel") == "--max-parallel" and flag_of("sets") == "-S"


@pytest.mark.parametrize(
    ("argv", "last"),
    [
        (
            ["sweep", "-S", "x=1", "--max-parallel", "0"],
            "error: --max-parallel: 0 is not allowed; expected an integer >= 1",
        ),
        (["serve", "--jobs", "0", "--interval", "60"], "argument --jobs: 0 is not allowed; expected an integer >= 1"),
        (["run", "--jobs", "two"], "argument --jobs: 'two' is not allowed; expected an integer >= 1"),
    ],
)
def test_a_mistake_exits_2_naming_the_flag(capsys, argv, last):
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(last)


def test_a_run_takes_its_overrides_as_given():
    assert parse(["run", "--jobs", "1", "--set", "train_cnn.epochs=2"]).overrides == ["train_cnn.epochs=2"]


def test_parsing_the_arguments_starts_no_prefect():
    """Prefect reads its settings when it is imported: `fmnist-flow` sets its own (the embedded
    server's start-up wait) first, so nothing before the command runs may import it."""
    code = "import sys, flows.cli.main; sys.exit('prefect' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
