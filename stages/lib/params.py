"""Load one section of params.yaml and check every key before a stage does any real work.

Each section is a pydantic model (`Section`): unknown keys are refused, every key is required,
values are taken strictly (no "3" for 3, no true for 1). Field types come from the helpers
below, which also carry the words of the one-line error: what the value must be. The same
models give params.yaml's JSON Schema (`python -m tools.schema`), for editors; `require_integer`
words the command-line checks (`--jobs 0`) the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Len, Lt
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from stages.lib import paths
from stages.lib.stage import StageError


class ParamsError(StageError):
    """params.yaml holds a key, type or value that a stage cannot use."""


class Section(BaseModel):
    """One section of params.yaml. Subclasses document each key with a docstring under it."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True)


@dataclass(frozen=True)
class Allowed:
    """What a field's value must be, in the words of the error message."""

    text: str


def integer(minimum: int | None = None, maximum: int | None = None, *, nullable: bool = False) -> Any:
    bounds = [Ge(minimum)] if minimum is not None else []
    bounds += [Le(maximum)] if maximum is not None else []
    allowed = f"an integer{_bounds_text(minimum, maximum)}" + (" or null" if nullable else "")
    kind = Annotated[(int, *bounds)] if bounds else int
    return Annotated[kind | None if nullable else kind, Allowed(allowed)]


def number(minimum: float | None = None, maximum: float | None = None, *, exclusive: str = "") -> Any:
    """A finite real number within bounds; `exclusive` names the open ends: "", "min", "max" or "both"."""
    low_open, high_open = exclusive in ("min", "both"), exclusive in ("max", "both")
    bounds, words = [], []
    if minimum is not None:
        bounds.append(Gt(minimum) if low_open else Ge(minimum))
        words.append(f"{'>' if low_open else '>='} {minimum}")
    if maximum is not None:
        bounds.append(Lt(maximum) if high_open else Le(maximum))
        words.append(f"{'<' if high_open else '<='} {maximum}")
    return Annotated[(float, *bounds, Allowed("a number" + (f" {' and '.join(words)}" if words else "")))]


def boolean() -> Any:
    return Annotated[bool, Allowed("true or false")]


def choice(*options: str) -> Any:
    return Annotated[Literal[options], Allowed("one of " + ", ".join(repr(o) for o in options))]


def list_of(item: Any, *, what: str, min_length: int = 1, max_length: int | None = None) -> Any:
    allowed = f"a list of {min_length}" + (f" to {max_length}" if max_length else " or more") + f" {what}"
    return Annotated[list[item], Len(min_length, max_length), Allowed(allowed)]


def text() -> Any:
    return Annotated[str, StringConstraints(pattern=r"\S"), Allowed("a non-empty string")]


def require_integer(name: str | None, value: Any, minimum: int) -> int:
    """`value` if it is an integer >= `minimum`, else ValueError("NAME = VALUE is not allowed;
    expected an integer >= MINIMUM"), as a params error words it (without "NAME = " if no name)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        named = f"{name} = " if name else ""
        raise ValueError(f"{named}{value!r} is not allowed; expected an integer{_bounds_text(minimum, None)}")
    return value


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _message(section: str, values: dict[str, Any], model: type[Section], error: dict[str, Any]) -> str:
    """One pydantic error as the line a user reads: the key, the value and what is allowed."""
    if not error["loc"]:  # a check across keys, raised by a model validator
        return f"params.yaml: {section}: {error['msg'].removeprefix('Value error, ')}"
    key = error["loc"][0]
    if error["type"] == "extra_forbidden":
        return f"params.yaml: unknown key {section}.{key}; allowed keys are {', '.join(model.model_fields)}"
    if error["type"] == "missing":
        return f"params.yaml: missing key {section}.{key}"
    allowed = next((m.text for m in model.model_fields[key].metadata if isinstance(m, Allowed)), error["msg"])
    return f"params.yaml: {section}.{key} = {values[key]!r} is not allowed; expected {allowed}"


def validate(section: str, values: Any, model: type[Section]) -> dict[str, Any]:
    """Check `values` against `model`: every key present, none unknown, each value allowed.
    Raises ParamsError naming the first problem (unknown keys, then missing ones, then values)."""
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: section '{section}' must be a mapping of keys to values, got {values!r}")
    try:
        return model.model_validate(values).model_dump()
    except ValidationError as exc:
        order = {"extra_forbidden": 0, "missing": 1}
        first = min(exc.errors(), key=lambda e: order.get(e["type"], 2))
        raise ParamsError(_message(section, values, model, first)) from None


def read(path: Path = paths.PARAMS) -> dict[str, Any]:
    """params.yaml as a mapping, read with a safe loader."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path.name} is missing at {path}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path.name} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict):
        raise ParamsError(f"{path.name} must be a mapping of sections, got {type(document).__name__}")
    return document


def load(section: str, model: type[Section], path: Path = paths.PARAMS) -> dict[str, Any]:
    """The validated `section` of params.yaml."""
    document = read(path)
    if section not in document:
        raise ParamsError(f"{path.name} has no section '{section}'")
    return validate(section, document[section], model)
