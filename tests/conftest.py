"""Tiny synthetic Fashion-MNIST-shaped data that the tests write themselves."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from stages.lib.idx import IdxSpec, encode
from tests.flows.servers import PrefectServer, running_prefect_server
from tests.helpers import TINY_PARAMS, Project, require_real_data, tool_env


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


SESSION_SERVER = pytest.StashKey[PrefectServer]()
ON_SERVER = pytest.StashKey[set[str]]()  # the modules that use the session's server


@pytest.fixture(scope="session")
def prefect_server(request, tmp_path_factory) -> Iterator[PrefectServer]:
    """One real Prefect server (`prefect server start`, 127.0.0.1) for the test session. It runs
    while the modules that use it do, which run one after another (below): stopped when the next
    test is of another module, started again, on the same port and database, if one of them follows."""
    with running_prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        request.config.stash[SESSION_SERVER] = server
        yield server


def _uses_the_session_server(item: pytest.Item | None) -> bool:
    """Whether `item` is a test of a module on the session's server (None: the session's end)."""
    return item is not None and _module(item.nodeid) in item.config.stash.get(ON_SERVER, set())


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    server = item.config.stash.get(SESSION_SERVER, None)
    if server is not None and _uses_the_session_server(item) and server.process.poll() is not None:
        server.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield  # the test's fixtures torn down, its module's too if the next test is of another module
    server = item.config.stash.get(SESSION_SERVER, None)
    if server is not None and _uses_the_session_server(item) and not _uses_the_session_server(nextitem):
        server.stop()  # idle until the session ends otherwise: 1-4 CPU-s a minute (Zen 4 to Zen 3)
    return result


def _run_directory(config: pytest.Config) -> Path:
    """The test run's temporary directory: the controller's, above each xdist worker's."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def _once_per_run(config: pytest.Config, name: str, build: Callable[[Path], None]) -> Path:
    """`name` in the run's directory, built by `build` once per test run: the xdist workers share it
    (the first to ask builds it, under a lock the others wait on; a build that failed half-way is
    started again)."""
    shared = _run_directory(config)
    built = shared / name / ".built"
    with FileLock(shared / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(shared / name, ignore_errors=True)
            (shared / name).mkdir()
            build(shared / name)
            built.touch()
    return shared / name


def _committed_once_per_run(
    config: pytest.Config, name: str, start: Callable[[Path], Project], params: dict[str, dict], message: str
) -> Project:
    """`start(root)` with `params` set, reproduced by `dvc repro` and committed as `message`, once per
    test run (_once_per_run). Its `ran`: the stages that `dvc repro` ran, in its order."""

    def build(directory: Path) -> None:
        project = start(directory / "project")
        project.set_params(**params)
        (directory / "ran").write_text(" ".join(project.repro()))
        project.commit(message)

    directory = _once_per_run(config, name, build)
    project = Project.existing(directory / "project")
    project.ran = (directory / "ran").read_text().split()
    return project


@pytest.fixture(scope="session")
def reproduced(request) -> Project:
    """The project with tiny params on the real data, reproduced by `dvc repro` and committed,
    once per test run. Tests read it, and take a copy (`reproduced.copy_to`) before running anything in it."""
    require_real_data()
    return _committed_once_per_run(request.config, "reproduced", Project, TINY_PARAMS, "tiny pipeline")


@pytest.fixture(scope="session")
def mlp_retrained(request, reproduced) -> Project:
    """`reproduced` (HEAD~1), then a commit whose MLP trained three epochs instead of one (HEAD): the
    two commits that compare, plots and review tests read, built once per test run. Tests take a copy."""
    return _committed_once_per_run(request.config, "mlp-retrained", reproduced.copy_to,
                                   {"train_mlp": {"epochs": 3}}, "mlp: 3 epochs")  # fmt: skip


@pytest.fixture(scope="session")
def migrated_prefect_home(request) -> Path:
    """A Prefect home whose empty SQLite database is migrated, once per test run. An embedded server
    on a new home migrates its database first: 7 of the 19 CPU-s of a `fmnist-flow run` with nothing to do."""

    def build(home: Path) -> None:
        subprocess.run(["prefect", "server", "database", "upgrade", "-y"], env=_prefect_home_env(home), check=True,
                       capture_output=True)  # fmt: skip

    return _once_per_run(request.config, "prefect-home", build)


@pytest.fixture
def embedded_prefect_env(migrated_prefect_home, tmp_path) -> dict[str, str]:
    """The environment of a `fmnist-flow` command on Prefect's embedded server, as a user without a
    server runs it: a Prefect home of the test's own (its server writes its runs there), a copy of
    the migrated one."""
    home = tmp_path / "prefect"
    shutil.copytree(migrated_prefect_home, home, ignore=shutil.ignore_patterns(".built"))
    return _prefect_home_env(home)


def _prefect_home_env(home: Path) -> dict[str, str]:
    return {**tool_env(), "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def pytest_collection_finish(session: pytest.Session) -> None:
    """The trainings a test runs in its own process (tests/stages/) get one intra-op and one inter-op
    thread. Three xdist workers share two cores, so a second thread buys no speed. And oneDNN splits
    a primitive's work by the thread that calls it, so two trainings from the same seed have, rarely
    and under load, ended with different weights. The stages that DVC starts keep TensorFlow's defaults.
    Set before TensorFlow's runtime starts, which is at the first op: collection imports it and runs none."""
    if "tensorflow" in sys.modules:  # imported by a test module: some test here trains in-process
        tf = sys.modules["tensorflow"]
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)


@pytest.fixture
def project(reproduced, tmp_path) -> Project:
    """A copy of the session's tiny reproduced project, for a test to run things in or damage."""
    return reproduced.copy_to(tmp_path / "project")


# Longest first: xdist hands each worker a unit of work (a module, or the modules on the session's
# server below) and then one more as it frees up, in collection order (pyproject.toml turns off its
# reordering by test count), so the units that take minutes start at once and the short ones fill
# in. A module says what it takes where it is written: `pytestmark = pytest.mark.slow(minutes=N)`
# (N wall minutes on a 2-vCPU machine with the suite beside it; a slow mark alone counts one).
#
# The modules that use the session's Prefect server are one unit, on one worker: one server for the
# run instead of one per worker that meets such a module (a server costs 9 CPU-s to start and
# 1-4 a minute idle, so it stops when they are done). The workers, which collect, write down those
# modules in the run's directory; the scheduler, in the controller, reads them once all have collected.
# (Not xdist's `--dist loadgroup`: it marks a group in each test's ID, which pytest 9.2's IDs no
# longer let it change, and it spreads the other tests one by one, module fixtures and all.)
SERVER_MODULES = "session-server-modules.json"
SERVER_UNIT = "prefect-server"


def _expected_minutes(item: pytest.Item) -> float:
    slow = item.get_closest_marker("slow")
    return slow.kwargs.get("minutes", 1) if slow else 0


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_server = sorted({_module(i.nodeid) for i in items if "prefect_server" in getattr(i, "fixturenames", ())})
    config.stash[ON_SERVER] = set(on_server)
    if hasattr(config, "workerinput"):
        record = _run_directory(config) / SERVER_MODULES
        written = record.with_name(f"{record.name}.{config.workerinput['workerid']}")
        written.write_text(json.dumps(on_server))
        os.replace(written, record)  # every worker collects the same: whichever lands last is whole
    minutes: dict[str, float] = {}
    for item in items:
        module = _module(item.nodeid)
        minutes[module] = max(minutes.get(module, 0), _expected_minutes(item))
    unit = {module: SERVER_UNIT if module in on_server else module for module in minutes}
    unit_minutes: dict[str, float] = {}
    for module, expected in minutes.items():
        unit_minutes[unit[module]] = unit_minutes.get(unit[module], 0) + expected

    # Stable: a unit's modules stay together, each module in its own order.
    def key(item: pytest.Item) -> tuple[float, str]:
        of = unit[_module(item.nodeid)]
        return -unit_minutes[of], of

    items.sort(key=key)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: no error where xdist is not installed
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndTheServersModules(LoadScopeScheduling):
        """`--dist loadscope`, the modules on the session's server being one unit."""

        @functools.cached_property
        def on_server(self) -> set[str]:  # read when scheduling starts: every worker has collected
            record = _run_directory(config) / SERVER_MODULES
            return set(json.loads(record.read_text())) if record.exists() else set()

        def _split_scope(self, nodeid: str) -> str:
            return SERVER_UNIT if _module(nodeid) in self.on_server else super()._split_scope(nodeid)

    return ModulesAndTheServersModules(config, log)
