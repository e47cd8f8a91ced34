"""The layout a newcomer reads: `ls stages/` is dvc.yaml's stages, each stage's deps in dvc.yaml are
exactly the project modules it imports, and no stage imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT

PIPELINE = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def _module_file(module: str) -> Path | None:
    """The file of a project module (`stages.lib.paths`), or None for anything else."""
    if module.split(".")[0] not in ("stages", "flows", "tools"):
        return None
    base = PROJECT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function: `from a.b import c` names
    a.b, and a.b.c when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def imported_files(module: str) -> set[str]:
    """The project files `module` runs when imported: itself and what it imports, transitively
    (package __init__ files aside: test_package_inits_hold_no_code)."""
    seen: set[Path] = set()
    stack = [_module_file(module)]
    while stack:
        path = stack.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        stack.extend(_module_file(name) for name in _imports(path))
    return {str(p.relative_to(PROJECT)) for p in seen if p.name != "__init__.py"}


def test_stages_holds_exactly_the_pipelines_stages_and_one_package_of_helpers():
    entries = {p.name for p in (PROJECT / "stages").iterdir() if p.name != "__pycache__"}
    assert entries == {"__init__.py", "lib", *(f"{name.replace('-', '_')}.py" for name in PIPELINE)}


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_a_stages_code_deps_are_exactly_what_it_imports(stage):
    module = f"stages.{stage.replace('-', '_')}"
    assert PIPELINE[stage]["cmd"] == f"python -m {module}"
    declared = {dep for dep in PIPELINE[stage]["deps"] if dep.endswith(".py")}
    assert declared == imported_files(module)


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_no_stage_imports_another(stage):
    module = f"stages.{stage.replace('-', '_')}"
    others = {f"stages/{name.replace('-', '_')}.py" for name in PIPELINE if name != stage}
    assert not imported_files(module) & others


def test_package_inits_hold_no_code():
    """An __init__ runs whenever its package is imported; holding only a docstring, it is no
    stage's dependency."""
    for init in PROJECT.glob("*/**/__init__.py"):
        if ".venv" in init.parts:
            continue
        body = ast.parse(init.read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), init


def test_no_module_beside_a_deployments_entrypoint_shadows_an_importable_one():
    """Prefect loads a deployment's entrypoint with the entrypoint's directory first on sys.path, so a
    module there named like a package (`stages.py` beside flows/pipeline/flow.py) would be imported in
    its place, and every run of the deployment would crash on start."""
    import importlib.util
    import sys

    deployments = yaml.safe_load((PROJECT / "prefect.yaml").read_text())["deployments"]
    directories = {(PROJECT / d["entrypoint"].split(":")[0]).parent for d in deployments}
    taken = {"stages", "flows", "tools", "bench", "tests", *sys.stdlib_module_names}
    for directory in directories:
        for module in directory.glob("*.py"):
            name = module.stem
            if name == "__init__":
                continue
            assert name not in taken, f"{module.relative_to(PROJECT)} shadows {name!r} where Prefect loads {directory}"
            found = importlib.util.find_spec(name) if "." not in name else None
            assert found is None or Path(found.origin or "").parent == directory, (
                f"{module.relative_to(PROJECT)} shadows the installed {name!r} where Prefect loads {directory}"
            )
