"""A sweep's search: the Optuna study that picks each trial's params and stops hopeless trials.

`grid` runs every listed point (each an enqueued trial), `random` and `tpe` draw `trials` points
(TPE with Optuna's constant liar, so that trials running at once do not crowd one region). The
objective is one model's validation accuracy at its kept epoch, never a test figure. The median
pruner compares each running trial's validation accuracy after each epoch with the median of the
finished trials' after the same epoch, once `prune_after` trials have finished.

There is no database of its own: a sweep started again rebuilds the study from its own DVC
experiments (their params and per-epoch validation curves) and its pruned runs on Prefect, so the
search goes on where it stopped and its total stays `trials`.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from flows.sweep.space import Dimension, grid

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep's log says what each trial did


@dataclass
class Restored:
    """A trial of an earlier start of the same sweep: finished (a DVC experiment), pruned or running."""

    name: str
    point: dict[str, Any]
    state: str  # "finished" | "pruned" | "running"
    value: float | None = None
    curve: dict[int, float] = field(default_factory=dict)  # epoch -> validation accuracy


class Search:
    def __init__(
        self,
        name: str,
        dimensions: list[Dimension],
        *,
        method: str = "grid",
        trials: int | None = None,
        seed: int = 0,
        prune: str = "none",
        prune_after: int = 2,
    ):
        self.name, self.dimensions, self.method = name, dimensions, method
        self.pruning = prune == "median"
        self.distributions = {d.key: d.distribution() for d in dimensions}
        self.points = grid(dimensions) if method == "grid" else None
        self.budget = len(self.points) if self.points is not None else trials
        if method == "tpe":
            # Fewer random trials first than Optuna's default 10: a sweep's budget is tens of trials.
            startup = max(2, min(10, self.budget // 3))
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=startup)
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=prune_after) if prune == "median" else None
        self.study = optuna.create_study(
            direction="maximize", sampler=sampler, pruner=pruner or optuna.pruners.NopPruner()
        )
        self.trials: dict[str, optuna.Trial] = {}  # running trials by name
        self.planned: dict[str, dict[str, Any]] = {}  # every trial's point by name, in order
        self.reported: dict[str, set[int]] = {}  # the epochs each running trial has reported
        self._lock = threading.Lock()

    # --- restoring an earlier start ---

    def restore(self, earlier: list[Restored]) -> None:
        """Tell the study what an earlier start of this sweep did; running trials are asked again
        (with their params) so that they stay in the study while they are waited for."""
        for trial in earlier:
            params = {d.key: d.to_optuna(trial.point[d.key]) for d in self.dimensions}
            self.planned[trial.name] = trial.point
            if trial.state == "running":
                self.study.enqueue_trial(params)
                self.trials[trial.name] = self.study.ask(self.distributions)
                continue
            state = TrialState.COMPLETE if trial.state == "finished" else TrialState.PRUNED
            self.study.add_trial(optuna.trial.create_trial(
                state=state, value=trial.value if state == TrialState.COMPLETE else None, params=params,
                distributions=self.distributions, intermediate_values=trial.curve,
            ))  # fmt: skip

    # --- the trials ---

    def names(self) -> Iterator[str]:
        """Every trial's name in order: restored ones first, then new ones as they are asked for
        (read lazily: a new trial's params are drawn when a slot is free)."""
        yield from list(self.planned)
        while (found := self._next()) is not None:
            yield found

    def _next(self) -> str | None:
        with self._lock:
            if len(self.planned) >= self.budget:
                return None
            if self.points is not None:
                unplanned = ((i, p) for i, p in enumerate(self.points, 1) if f"{self.name}-{i}" not in self.planned)
                number, point = next(unplanned)
                self.study.enqueue_trial({d.key: d.to_optuna(point[d.key]) for d in self.dimensions})
            else:
                number = max((int(n.rsplit("-", 1)[1]) for n in self.planned), default=0) + 1
            trial = self.study.ask(self.distributions)
            point = {d.key: d.from_optuna(trial.params[d.key]) for d in self.dimensions}
            name = f"{self.name}-{number}"
            self.trials[name], self.planned[name] = trial, point
            return name

    def report(self, name: str, epoch: int, value: float) -> str | None:
        """A running trial's validation accuracy after `epoch`; the reason to stop it, if it should be."""
        trial = self.trials.get(name)
        if trial is None or epoch in self.reported.setdefault(name, set()):
            return None
        self.reported[name].add(epoch)
        trial.report(value, epoch)
        if not trial.should_prune():
            return None
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        finished = [t.intermediate_values[epoch] for t in complete if epoch in t.intermediate_values]
        median = statistics.median(finished) if finished else float("nan")
        return f"pruned at epoch {epoch} (val_accuracy {value:.4f} < median {median:.4f})"

    def finish(self, name: str, value: float | None, state: str) -> None:
        """`state`: "finished" (with `value`), "pruned" or "failed"."""
        trial = self.trials.pop(name, None)
        if trial is None:
            return
        if state == "finished" and value is not None:
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL)
