"""A sweep's options: what `fmnist-flow sweep` was asked, checked once where the command line is
parsed, each default written here and nowhere else, then passed down unchanged (as Ray Tune's
TuneConfig and FailureConfig, or Optuna's create_study arguments, say what a run may do)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from flows.contract import DEFAULT_DEPLOYMENT, EXPERIMENT_FLOW
from stages.lib import paths

METHODS = ("grid", "random", "tpe")
PRUNERS = ("median", "none")
HEARTBEAT_SECONDS = 30  # Prefect's shortest flow-run heartbeat interval, which each point's run is asked for
# Where a sweep's leaderboard (CSV) and its search's pictures go without --csv, under the project root:
# git-ignored, and apart from reports/, which is a DVC output of the report stage.
SWEEPS_DIR = "sweeps"


@dataclass(frozen=True)
class SweepOptions:
    """Everything a sweep may do, as `fmnist-flow sweep` names it (`--max-parallel` is max_parallel)."""

    sets: tuple[str, ...]  # -S section.key=values, as `dvc exp run -S` takes them, with Hydra's grammar
    search: str = "grid"  # grid (every listed point), random or tpe (Optuna's TPE)
    trials: int | None = None  # how many trials random and TPE draw
    seed: int = 0  # seeds the search
    objective: str = "cnn"  # the model whose validation accuracy at its kept epoch is maximised
    prune: str | None = None  # median or none; None: median for random and tpe, none for a grid
    prune_after: int = 2  # trials that must finish before any is pruned
    deployment: str = DEFAULT_DEPLOYMENT  # the experiment flow's deployment (`name` or `flow/name`)
    max_parallel: int = 4  # trials at once
    name: str | None = None  # experiments NAME-1, NAME-2, ...; None: from the commit and the search
    git_remote: str = "origin"  # the git remote workers clone from and push experiments to
    jobs: int = 2  # stages at once within a trial
    retries: int = 2  # runs again of a trial whose machine was lost (or whose process crashed)
    # A running trial silent this long is lost: at least two heartbeats, so one late heartbeat loses none.
    lost_after: float = 4.0 * HEARTBEAT_SECONDS
    api_outage: float = 90.0  # seconds the Prefect API may not answer before the sweep stops
    csv: Path | None = None  # the leaderboard as CSV, the pictures beside it; None: sweeps/<name>/leaderboard.csv

    def __post_init__(self) -> None:
        if not self.sets:
            raise ValueError("-S: give at least one section.key=values to sweep")
        for flag, value, allowed in (("--search", self.search, METHODS), ("--objective", self.objective, paths.MODELS),
                                     ("--prune", self.prune, (*PRUNERS, None))):  # fmt: skip
            if value not in allowed:
                expected = ", ".join(a for a in allowed if a is not None)
                raise ValueError(f"{flag}: {value!r} is not allowed; expected one of {expected}")
        if self.search != "grid" and self.trials is None:
            raise ValueError(f"--trials: --search {self.search} draws its trials: say how many with --trials N")
        integers = {"seed": 0, "prune_after": 1, "max_parallel": 1, "jobs": 1, "retries": 0}
        integers |= {"trials": 1} if self.trials is not None else {}
        for key, minimum in integers.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{flag_of(key)}: {value!r} is not allowed; expected an integer >= {minimum}")
        for key, minimum in (("lost_after", 2.0 * HEARTBEAT_SECONDS), ("api_outage", 10.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
                raise ValueError(
                    f"{flag_of(key)}: {value!r} is not allowed; expected a number of seconds >= {minimum:g}"
                )
        if self.csv is not None:
            object.__setattr__(self, "csv", _csv_path(Path(self.csv)))
        # Resolved once, here: the deployment by its full name, the pruner by the search's default.
        if "/" not in self.deployment:
            object.__setattr__(self, "deployment", f"{EXPERIMENT_FLOW}/{self.deployment}")
        if self.prune is None:
            object.__setattr__(self, "prune", "none" if self.search == "grid" else "median")
        object.__setattr__(self, "sets", tuple(self.sets))

    def leaderboard_csv(self, root: Path, name: str) -> Path:
        """Where the sweep `name` writes its leaderboard as CSV (its pictures go beside it)."""
        return self.csv or root / SWEEPS_DIR / name / "leaderboard.csv"


def _csv_path(path: Path) -> Path:
    """--csv as an absolute path, refused unless it names a .csv file in a directory that exists."""
    if path.suffix != ".csv":
        raise ValueError(f"--csv: {str(path)!r} is not allowed; expected a file name ending in .csv")
    path = path.expanduser().absolute()
    if not path.parent.is_dir():
        raise ValueError(f"--csv: {path.parent} is not a directory that exists; expected a file in an existing one")
    if path.is_dir():
        raise ValueError(f"--csv: {path} is a directory; expected a file name ending in .csv")
    return path


def flag_of(field: str) -> str:
    """The command-line flag of an option: max_parallel is --max-parallel."""
    return "-S" if field == "sets" else f"--{field.replace('_', '-')}"


DEFAULTS = {f.name: f.default for f in fields(SweepOptions) if f.name != "sets"}
