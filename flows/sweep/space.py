"""A sweep's search space, from `-S` items in DVC's syntax with Hydra's sweeper grammar:

    a,b,c   choice(a,b,c)   range(start,stop[,step])   interval(low,high)   tag(log, interval(low,high))

The kind of each key (integer, real, or anything else) is that of its value in params.yaml, and
every value a dimension can take is checked against the stage's params model before any work:
a value the model refuses is one line naming it. A grid takes the listed values only; random and
TPE searches draw from the distributions (Optuna's), integer keys as integers.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

GRAMMAR = "a value, a,b,c, choice(a,b,c), range(start,stop[,step]), interval(low,high) or tag(log, interval(low,high))"


class SpaceError(ValueError):
    """A `-S` item that cannot be searched; the message names it and what is allowed."""


@dataclass(frozen=True)
class Dimension:
    key: str  # section.key of params.yaml
    spec: str  # the -S item as given
    choices: tuple[Any, ...] = ()  # listed values: a,b,c, choice(...), range(...), or one value
    low: float | None = None  # interval(low, high)
    high: float | None = None
    log: bool = False
    integer: bool = False  # an integer key: an interval draws integers

    @property
    def listed(self) -> bool:
        return self.low is None

    def distribution(self) -> BaseDistribution:
        """Optuna's distribution; listed values as their YAML text (Optuna's choices are scalars)."""
        if self.listed:
            return CategoricalDistribution([text(choice) for choice in self.choices])
        if self.integer:
            return IntDistribution(math.ceil(self.low), math.floor(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def from_optuna(self, value: Any) -> Any:
        return value_of(value) if self.listed else value

    def to_optuna(self, value: Any) -> Any:
        return text(value) if self.listed else value


def value_of(text: str) -> Any:
    """A -S value as the `-S` of `dvc exp run` writes it into params.yaml (YAML)."""
    return yaml.safe_load(text) if text.strip() else None


def _current(document: dict, key: str) -> Any:
    node: Any = document
    for part in key.split("."):
        node = node[part]
    return node


def parse(sets: list[str], params_path: Path) -> list[Dimension]:
    """The dimensions of `sets`, each checked against params.yaml's keys and its stage's params model."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    from flows.plumbing.overrides import check_keys

    document = yaml.safe_load(params_path.read_text())
    dimensions = []
    for item in sets:
        try:
            (override,) = OverridesParser.create().parse_overrides([item])
        except HydraException:
            raise SpaceError(f"-S {item!r} is not of the form section.key=values; values are {GRAMMAR}") from None
        key = override.key_or_group
        check_keys([item], params_path)
        current = _current(document, key)
        integer = isinstance(current, int) and not isinstance(current, bool)
        value = override.value()
        if isinstance(value, IntervalSweep):
            if not isinstance(current, int | float) or isinstance(current, bool):
                raise SpaceError(f"-S {item}: {key} is {current!r} in params.yaml, not a number: interval() needs "
                                 f"a numeric key; list its values (choice(a,b))")  # fmt: skip
            if value.start >= value.end:
                raise SpaceError(f"-S {item}: the interval's low end {value.start:g} is not below its high end "
                                 f"{value.end:g}")  # fmt: skip
            log = "log" in value.tags
            if log and value.start <= 0:
                raise SpaceError(f"-S {item}: a log interval needs a low end above 0, not {value.start:g}")
            if integer and math.ceil(value.start) > math.floor(value.end):
                raise SpaceError(f"-S {item}: {key} is an integer, and no integer lies in the interval")
            dimension = Dimension(key, item, low=value.start, high=value.end, log=log, integer=integer)
            ends = [math.ceil(value.start), math.floor(value.end)] if integer else [value.start, value.end]
            _check(dimension, ends, document)
        else:
            if value.tags if isinstance(value, ChoiceSweep | RangeSweep) else False:
                raise SpaceError(f"-S {item}: tag() goes with interval(), as tag(log, interval(low,high))")
            if isinstance(value, RangeSweep | ChoiceSweep):
                listed = [value_of(text) for text in override.sweep_string_iterator()]
            else:
                listed = [value_of(override.get_value_element_as_str())]
            dimension = Dimension(key, item, choices=tuple(listed), integer=integer)
            _check(dimension, listed, document)
        dimensions.append(dimension)
    keys = [d.key for d in dimensions]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise SpaceError(f"-S {duplicated[0]} is given twice; give its values once, comma-separated")
    return dimensions


def _check(dimension: Dimension, values: list[Any], document: dict) -> None:
    """Every value against the params model of the key's stage, beside params.yaml's other keys."""
    from stages.lib import params
    from tools.schema import Params

    section, _, name = dimension.key.partition(".")
    model = Params.model_fields[section].annotation
    for value in values:
        try:
            params.validate(section, {**document[section], name: value}, model)
        except params.ParamsError as exc:
            raise SpaceError(f"-S {dimension.spec}: {str(exc).removeprefix('params.yaml: ')}") from None


def grid(dimensions: list[Dimension]) -> list[dict[str, Any]]:
    """Every point of a grid of listed values, in the order of the items and their values."""
    drawn = [d.spec for d in dimensions if not d.listed]
    if drawn:
        raise SpaceError(f"-S {drawn[0]} draws values: search it with --search random or tpe, or list its values")
    return [dict(zip((d.key for d in dimensions), values, strict=True))
            for values in itertools.product(*(d.choices for d in dimensions))]  # fmt: skip


def overrides(point: dict[str, Any]) -> list[str]:
    """A point's values as the `section.key=value` overrides a worker writes into params.yaml."""
    return [f"{key}={text(value)}" for key, value in point.items()]


def text(value: Any) -> str:
    """`value` as YAML that reads back as the same value (`1.0e-05`, not `1e-05`, which YAML 1.1
    reads as a string)."""
    if isinstance(value, float):
        written = repr(value)
        return written.replace("e", ".0e", 1) if "e" in written and "." not in written else written
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
