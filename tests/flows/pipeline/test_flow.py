"""The Prefect flow: stage planning, param overrides, and its invariants against `dvc repro`."""

import re
from datetime import datetime, timezone

import httpx
import pytest
import yaml

from flows.pipeline.flow import metrics_markdown
from flows.plumbing.dvc import plan
from tests.helpers import TINY_PARAMS, Project, require_real_data, tf_startup_lines

GRAPH = {
    "fetch": set(),
    "preprocess": {"fetch"},
    "train-mlp": {"preprocess"},
    "train-cnn": {"preprocess"},
    "evaluate": {"preprocess", "train-mlp", "train-cnn"},
    "report": {"preprocess", "train-mlp", "train-cnn", "evaluate"},
}


def test_plan_orders_every_stage_upstream_first():
    order = plan(GRAPH, None)
    assert sorted(order) == sorted(GRAPH)
    for stage, upstream in GRAPH.items():
        assert all(order.index(u) < order.index(stage) for u in upstream)


def test_plan_takes_targets_with_their_upstream_only():
    assert plan(GRAPH, ["train-cnn"]) == ["fetch", "preprocess", "train-cnn"]


def test_plan_names_an_unknown_stage():
    with pytest.raises(ValueError, match="unknown stage 'train'; dvc.yaml has fetch, preprocess"):
        plan(GRAPH, ["train"])


def test_metrics_markdown_tables_both_models(tmp_path):
    path = tmp_path / "evaluate.json"
    assert metrics_markdown(path) is None
    path.write_text('{"mlp": {"accuracy": 0.9, "loss": 0.3, "macro_f1": 0.89},'
                    ' "cnn": {"accuracy": 0.93, "loss": 0.2, "macro_f1": 0.925}}')  # fmt: skip
    assert "| accuracy | 0.9000 | 0.9300 |" in metrics_markdown(path)


# --- invariants, on a real git + DVC repo with tiny params, the flow on Prefect's ephemeral server ---

ALL = ["fetch", "preprocess", "train-mlp", "train-cnn", "evaluate", "report"]
SUMMARY = re.compile(r"^\s+([\w-]+)\s+(ran|skipped|restored)\s+[\d.]+s\s+\(from [\d.]+s\)$", re.M)
# Files whose bytes carry a time: Keras stores the save time in a .keras file, the training
# metrics and history hold seconds, and the report shows them. Everything else a run writes
# must be byte for byte what `dvc repro` writes.
TIMED = ("dvclive/train_mlp/metrics.json", "dvclive/train_cnn/metrics.json",
         "dvclive/train_mlp/plots", "dvclive/train_cnn/plots", "reports")  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_server):
    """The tiny params, committed, never run; its flow runs go to the session's server (a flow run
    with no server starts a temporary one of its own: tests/reliability/test_stopping.py's)."""
    require_real_data()
    project = Project(tmp_path_factory.mktemp("flow"))
    project.set_params(**TINY_PARAMS)
    project.commit("tiny params")
    project.prefect_env = prefect_server.env
    return project


def lock_without_times(project: Project) -> dict:
    """dvc.lock with the hashes of TIMED files blanked."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            if entry["path"] in TIMED:
                entry.pop("md5"), entry.pop("size"), entry.pop("nfiles", None)
    return lock


def run_flow(project, *args):
    """Run the flow in a fresh process; returns {stage: status} from its summary."""
    proc = project.run("python", "-m", "flows", "run", *args, env=project.prefect_env, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return dict(SUMMARY.findall(output)), output


@pytest.mark.slow(minutes=5)
def test_flow_from_nothing_writes_what_dvc_repro_writes_and_draws_its_dag(project, reproduced, prefect_server):
    before = datetime.now(timezone.utc).isoformat()
    statuses, output = run_flow(project)  # two stages at a time, the default: train-mlp beside train-cnn
    assert list(statuses) == [s for s in plan(GRAPH, None)]
    assert set(statuses.values()) == {"ran"}
    assert "Running stage 'train-cnn'" in output  # the stage's own output reached the run log
    assert "cnn: kept epoch" in output and tf_startup_lines(output) == []  # without TensorFlow's start-up lines
    assert "up to date" in project.run("dvc", "status").stdout
    assert project.repro() == []
    # `reproduced` ran the same commit's params with plain `dvc repro`, one stage after another.
    assert lock_without_times(project) == lock_without_times(reproduced)
    assert project.read_json("metrics/evaluate.json") == reproduced.read_json("metrics/evaluate.json")
    # Prefect's graph draws an edge per task input: each stage's task run names its upstream stages'
    # task runs (wait_for), as dvc.yaml's DAG has them, and nothing else. The session's server may
    # hold other tests' pipeline runs (a deployment run, a schedule): this run is this project's.
    runs = prefect_server.flow_runs(flows={"name": {"any_": ["fmnist-pipeline"]}}, start_time={"after_": before})
    mine = [r for r in runs if r["parameters"].get("project") == str(project.root)]
    assert len(mine) == 1, [(r["name"], r["parameters"], r["deployment_id"], r["parent_task_run_id"]) for r in runs]
    response = httpx.post(f"{prefect_server.api_url}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [mine[0]["id"]]}}}, timeout=10)  # fmt: skip
    response.raise_for_status()
    task_runs = response.json()
    names = {t["id"]: t["name"] for t in task_runs}
    upstream = {
        t["name"]: {names[i["id"]] for i in t["task_inputs"].get("wait_for", []) if i["input_type"] == "task_run"}
        for t in task_runs
    }
    assert upstream == GRAPH


@pytest.mark.slow
def test_flow_after_dvc_repro_skips_every_stage(project):
    project.set_params(report={"grid_size": 4})
    assert project.repro() == ["report"]
    statuses, _ = run_flow(project)
    assert set(statuses) == set(ALL) and set(statuses.values()) == {"skipped"}


@pytest.mark.slow
def test_flow_restores_a_deleted_output_from_the_cache(project):
    (project.root / "models/mlp.keras").unlink()
    statuses, _ = run_flow(project)
    assert statuses["train-mlp"] == "restored"
    assert {s for s, status in statuses.items() if status != "skipped"} == {"train-mlp"}
    assert (project.root / "models/mlp.keras").is_file()


@pytest.mark.slow
def test_flow_override_reruns_exactly_the_affected_stages_and_force_reruns_the_rest(project):
    statuses, _ = run_flow(project, "--set", "train_cnn.epochs=2")
    assert {s for s, status in statuses.items() if status == "ran"} == {"train-cnn", "evaluate", "report"}
    statuses, _ = run_flow(project, "--force", "--target", "preprocess")
    assert statuses == {"fetch": "ran", "preprocess": "ran"}  # --force: up to date, and run again
    assert "epochs: 2" in (project.root / "params.yaml").read_text()
    assert "up to date" in project.run("dvc", "status").stdout
