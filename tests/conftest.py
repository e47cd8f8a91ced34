"""Tiny synthetic Fashion-MNIST-shaped data that the tests write themselves."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from stages.lib.idx import IdxSpec, encode
from tests.flows.servers import PrefectServer, running_prefect_server
from tests.helpers import TINY_PARAMS, Project, require_real_data


@dataclass
class TinyIdx:
    """Four IDX files in `directory` (gzipped) and the specs that accept exactly them."""

    directory: Path
    specs: tuple[IdxSpec, ...]
    arrays: dict[str, np.ndarray]


def synthetic_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` images whose class is learnable: class c lights up row band c, over noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.uint8) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 220
    return images, labels


def write_idx_dir(directory: Path, n_train: int = 200, n_test: int = 50) -> TinyIdx:
    directory.mkdir(parents=True, exist_ok=True)
    x_train, y_train = synthetic_split(n_train, seed=1)
    x_test, y_test = synthetic_split(n_test, seed=2)
    arrays = {
        "train-images-idx3-ubyte": x_train,
        "train-labels-idx1-ubyte": y_train,
        "t10k-images-idx3-ubyte": x_test,
        "t10k-labels-idx1-ubyte": y_test,
    }
    specs = []
    for name, array in arrays.items():
        data = encode(array)
        (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        specs.append(IdxSpec(name, hashlib.sha256(data).hexdigest(), len(array)))
    return TinyIdx(directory, tuple(specs), arrays)


@pytest.fixture
def tiny_idx(tmp_path: Path) -> TinyIdx:
    return write_idx_dir(tmp_path / "source")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[PrefectServer]:
    """One real Prefect server (`prefect server start`, 127.0.0.1) for the test session."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        yield server


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory, request) -> Project:
    """The project with tiny params on the real data, reproduced by `dvc repro` and committed,
    once per test run: the xdist workers share it (the first to ask builds it, under a lock the
    others wait on). Tests read it, and take a copy (`reproduced.copy_to`) before running anything in it."""
    require_real_data()
    base = tmp_path_factory.getbasetemp()
    worker = getattr(request.config, "workerinput", None)  # an xdist worker's; none without xdist (-p no:xdist)
    shared = base if worker is None else base.parent  # the run's directory, above each worker's
    root, built = shared / "reproduced" / "project", shared / "reproduced" / "built"
    with FileLock(shared / "reproduced.lock"):
        if not built.exists():
            shutil.rmtree(root.parent, ignore_errors=True)  # a build that failed half-way
            root.parent.mkdir()
            project = Project(root)
            project.set_params(**TINY_PARAMS)
            ran = project.repro()
            project.commit("tiny pipeline")
            built.write_text(" ".join(ran))
    reproduced = Project.existing(root)
    reproduced.ran = built.read_text().split()  # the stages `dvc repro` ran, in its order
    return reproduced


@pytest.fixture
def project(reproduced, tmp_path) -> Project:
    """A copy of the session's tiny reproduced project, for a test to run things in or damage."""
    return reproduced.copy_to(tmp_path / "project")


# Longest first: xdist's loadscope hands each worker a module and then one more as it frees up, in
# collection order (pyproject.toml turns off its reordering by test count), so the modules that
# take minutes start at once and the short ones fill in. A module says what it takes where it is
# written: `pytestmark = pytest.mark.slow(minutes=N)` (N wall minutes on a 2-vCPU machine with the
# suite beside it; a slow mark alone counts one).
def _expected_minutes(item: pytest.Item) -> float:
    slow = item.get_closest_marker("slow")
    return slow.kwargs.get("minutes", 1) if slow else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    minutes: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        minutes[module] = max(minutes.get(module, 0), _expected_minutes(item))
    items.sort(key=lambda item: -minutes[item.nodeid.split("::")[0]])  # stable within a module
