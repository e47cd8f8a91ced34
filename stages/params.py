"""Load one section of params.yaml and check every key before a stage does any real work."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from stages import paths
from stages.io import StageError

# A check takes a value and returns it (possibly normalised) or raises ValueError("what is allowed").
Check = Callable[[Any], Any]
Schema = Mapping[str, Check]


class ParamsError(StageError):
    """params.yaml holds a key, type or value that a stage cannot use."""


def integer(minimum: int | None = None, maximum: int | None = None, *, nullable: bool = False) -> Check:
    bounds = _bounds_text(minimum, maximum)
    allowed = f"an integer{bounds}" + (" or null" if nullable else "")

    def check(value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(allowed)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ValueError(allowed)
        return value

    return check


def number(minimum: float | None = None, maximum: float | None = None, *, exclusive: str = "") -> Check:
    """A real number within bounds; `exclusive` names the open ends: "", "min", "max" or "both"."""
    low_open = exclusive in ("min", "both")
    high_open = exclusive in ("max", "both")
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if low_open else '>='} {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if high_open else '<='} {maximum}")
    allowed = "a number" + (f" {' and '.join(parts)}" if parts else "")

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(allowed)
        if minimum is not None and (value <= minimum if low_open else value < minimum):
            raise ValueError(allowed)
        if maximum is not None and (value >= maximum if high_open else value > maximum):
            raise ValueError(allowed)
        return float(value)

    return check


def boolean() -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return value

    return check


def choice(*options: str) -> Check:
    allowed = "one of " + ", ".join(repr(o) for o in options)

    def check(value: Any) -> Any:
        if value not in options:
            raise ValueError(allowed)
        return value

    return check


def list_of(item: Check, *, what: str, min_length: int = 1, max_length: int | None = None) -> Check:
    allowed = f"a list of {min_length}" + (f" to {max_length}" if max_length else " or more") + f" {what}"

    def check(value: Any) -> Any:
        if not isinstance(value, list) or not min_length <= len(value) <= (max_length or len(value)):
            raise ValueError(allowed)
        try:
            return [item(v) for v in value]
        except ValueError:
            raise ValueError(allowed) from None

    return check


def text() -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a non-empty string")
        return value

    return check


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def validate(section: str, values: Any, schema: Schema) -> dict[str, Any]:
    """Check `values` against `schema`: every key present, none unknown, each value allowed."""
    if not isinstance(values, dict):
        raise ParamsError(f"params.yaml: section '{section}' must be a mapping of keys to values, got {values!r}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ParamsError(f"params.yaml: unknown key {section}.{unknown[0]}; allowed keys are {', '.join(schema)}")
    missing = [key for key in schema if key not in values]
    if missing:
        raise ParamsError(f"params.yaml: missing key {section}.{missing[0]}")
    checked = {}
    for key, check in schema.items():
        try:
            checked[key] = check(values[key])
        except ValueError as exc:
            raise ParamsError(
                f"params.yaml: {section}.{key} = {values[key]!r} is not allowed; expected {exc}"
            ) from None
    return checked


def load(section: str, schema: Schema, path: Path = paths.PARAMS) -> dict[str, Any]:
    """Read params.yaml with a safe loader and return the validated `section`."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path.name} is missing at {path}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path.name} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict) or section not in document:
        raise ParamsError(f"{path.name} has no section '{section}'")
    return validate(section, document[section], schema)
