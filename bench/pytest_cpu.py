"""Where a test run's CPU goes: a pytest plugin that records, per test, its wall seconds and the CPU
seconds of the test process and of the processes it started and waited for (servers, stages, DVC,
workers), then prints the modules that cost most.

    python -m pytest -p bench.pytest_cpu [PYTEST_ARGS ...]        # writes bench/pytest_cpu.jsonl

A process a fixture starts is counted when it is waited for, usually at the fixture's teardown:
the module it belongs to gets it, which is what deciding where to save needs. With xdist each
worker records its own tests; the totals add up across them.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import time
from pathlib import Path

import pytest

RECORD = Path(__file__).with_name("pytest_cpu.jsonl")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's controller: a record of this run alone
        RECORD.unlink(missing_ok=True)


def _cpu() -> tuple[float, float]:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    (mine, children), wall = _cpu(), time.perf_counter()
    yield
    (mine_after, children_after), wall_after = _cpu(), time.perf_counter()
    row = {"test": item.nodeid, "wall": round(wall_after - wall, 2), "cpu": round(mine_after - mine, 2),
           "children_cpu": round(children_after - children, 2),
           "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}  # fmt: skip
    with RECORD.open("a") as out:
        out.write(json.dumps(row) + "\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or not RECORD.exists():
        return
    per_module: collections.Counter[str] = collections.Counter()
    for line in RECORD.read_text().splitlines():
        row = json.loads(line)
        per_module[row["test"].split("::")[0]] += row["cpu"] + row["children_cpu"]
    total = sum(per_module.values())
    lines = [f"CPU-seconds of the tests, {total:.0f} in all (bench/pytest_cpu.jsonl):"]
    lines += [f"{seconds:8.1f}  {module}" for module, seconds in per_module.most_common(25)]
    session.config.get_terminal_writer().line("\n".join(lines))
