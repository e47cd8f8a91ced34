"""Every package the code imports is declared in pyproject.toml: the product's (stages/, flows/,
tools/) in its dependencies, so that a plain install runs it; the tests' and benchmarks' there or in
the dev extra. A package that only arrives as another one's dependency can go at that one's next
release."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.helpers import PROJECT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

OWN = {"stages", "flows", "tools", "tests", "bench"}
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised as PEP 503 does (`PyYAML>=6` -> pyyaml)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group()).lower()


def declared(*extras: str) -> set[str]:
    """The distributions pyproject.toml's dependencies list, and those of `extras`."""
    optional = PYPROJECT["optional-dependencies"]
    return {_name(r) for r in PYPROJECT["dependencies"] + [r for extra in extras for r in optional[extra]]}


def third_party_imports(path: Path) -> set[str]:
    """The top-level modules `path` imports (at the top or inside a function) that are neither the
    standard library's nor the project's own, nor a module beside it (bench's scripts import each other)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    beside = {p.stem for p in path.parent.glob("*.py")}
    return {m for m in found if m not in sys.stdlib_module_names and m not in OWN | beside and m != "__future__"}


def undeclared(root: Path, directories: tuple[str, ...], allowed: set[str]) -> list[str]:
    """One line per import in `directories` of `root` whose distribution is not in `allowed`."""
    distributions = packages_distributions()
    problems = []
    for directory in directories:
        for path in sorted((root / directory).rglob("*.py")):
            for module in sorted(third_party_imports(path)):
                # Not installed here: a requirement of its own name for another Python (tomli) will do.
                names = {_name(d) for d in distributions.get(module, [])} or {_name(module)}
                if not names & allowed:
                    from_ = ", ".join(sorted(names))
                    problems.append(f"{path.relative_to(root)} imports {module} ({from_}): not declared")
    return problems


@pytest.mark.parametrize(
    ("directories", "extras"),
    [(("stages", "flows", "tools"), ()), (("tests", "bench"), ("dev",))],
    ids=["product: dependencies", "tests and benchmarks: dependencies and dev"],
)
def test_every_imported_package_is_declared(directories, extras):
    problems = undeclared(PROJECT, directories, declared(*extras))
    assert not problems, "pyproject.toml misses what these import:\n" + "\n".join(problems)


def test_an_import_of_an_undeclared_package_is_found(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "module.py").write_text(
        "import os\nimport yaml\nfrom stages.lib import paths\n\n"
        "def f():\n    from hydra.errors import HydraException\n    import not_installed_anywhere\n"
    )
    assert undeclared(tmp_path, ("code",), {"pyyaml"}) == [
        "code/module.py imports hydra (hydra-core): not declared",
        "code/module.py imports not_installed_anywhere (not-installed-anywhere): not declared",
    ]
    assert undeclared(tmp_path, ("code",), {"pyyaml", "hydra-core", "not-installed-anywhere"}) == []
