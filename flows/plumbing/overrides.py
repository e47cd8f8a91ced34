"""Param overrides as `dvc exp run -S` takes them (`fmnist-flow run --set`; a sweep's points), written
into params.yaml keeping its comments, once the whole file passes the stages' checks: a refused
value costs nothing, since no stage starts (DVC deletes a stage's outputs before it runs it)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


def _parse(override: str) -> tuple[list[str], str]:
    key, sep, raw = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ValueError(f"override {override!r} is not of the form section.key=value")
    return parts, raw


def _parent(document: Any, parts: list[str], override: str) -> Any:
    """The mapping that holds the key `parts` names; only keys params.yaml already has."""
    node = document
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            allowed = ", ".join(map(str, node)) if isinstance(node, dict) else "none (not a mapping)"
            raise ValueError(
                f"override {override!r}: params.yaml has no {'.'.join(parts[: depth + 1])}; keys there: {allowed}"
            )
        if depth < len(parts) - 1:
            node = node[part]
    return node


def _load(path: Path, loader: Any) -> Any:
    """`loader(text)`, a YAML error becoming one line that names the file and the line."""
    try:
        return loader(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing from {path.parent}") from None
    except Exception as exc:  # ruamel's and PyYAML's errors alike carry problem and problem_mark
        if not hasattr(exc, "problem"):
            raise
        where = f" at line {exc.problem_mark.line + 1}" if getattr(exc, "problem_mark", None) else ""
        raise ValueError(f"{path.name} is not valid YAML ({exc.problem}{where}): fix it, or "
                         f"`git checkout {path.name}`") from None  # fmt: skip


def overridden(overrides: list[str], path: Path) -> str:
    """params.yaml's text with `section.key=value` overrides written in, as `dvc exp run -S` does,
    keeping comments; values are YAML (`3`, `0.5`, `[32, 64]`, `null`). Only existing keys can be
    set, and every section of the result must pass its stage's checks (ParamsError naming the first
    key a stage would refuse)."""
    import yaml as pyyaml
    from ruamel.yaml import YAML  # DVC's own YAML library: round-trips comments and layout

    from tools.schema import validate_all

    yaml = YAML()
    document = _load(path, yaml.load)
    for override in overrides:
        parts, raw = _parse(override)
        _parent(document, parts, override)[parts[-1]] = YAML(typ="safe").load(raw) if raw.strip() else None
    text = io.StringIO()
    yaml.dump(document, text)
    validate_all(pyyaml.safe_load(text.getvalue()))  # as a stage will read it
    return text.getvalue()


def check(overrides: list[str], path: Path) -> None:
    """Refuse (ValueError or ParamsError, one line) what `apply_overrides` would refuse, writing nothing."""
    overridden(overrides, path)


def apply_overrides(overrides: list[str], path: Path) -> None:
    """Write the overrides into params.yaml (see `overridden`), atomically: a refused one leaves the
    file as it was. Without overrides the file is checked, and left as it is."""
    text = overridden(overrides, path)
    if not overrides:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_keys(overrides: list[str], path: Path) -> None:
    """Fail with the key and the keys allowed when an override names a key params.yaml lacks."""
    import yaml

    document = _load(path, yaml.safe_load)
    for override in overrides:
        parts, _ = _parse(override)
        _parent(document, parts, override)
