"""The Prefect flow: stage planning, param overrides, and its invariants against `dvc repro`."""

import re
import shutil
from datetime import datetime, timezone

import httpx
import pytest
import yaml

from flows.pipeline.flow import metrics_markdown
from flows.plumbing.dvc import plan
from flows.plumbing.overrides import apply_overrides, check
from stages.lib.params import ParamsError
from tests.helpers import PROJECT, TINY_PARAMS, Project, require_real_data, tf_startup_lines

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


def test_overrides_set_yaml_values_and_keep_comments(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", path)
    apply_overrides(["train_cnn.epochs=3", "train_cnn.filters=[8, 16]", "preprocess.train_limit=null"], path)
    assert "# one conv block per entry" in path.read_text()
    document = yaml.safe_load(path.read_text())
    assert (document["train_cnn"]["epochs"], document["train_cnn"]["filters"]) == (3, [8, 16])
    assert document["preprocess"]["train_limit"] is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train_cnn.epoch=3", "params.yaml has no train_cnn.epoch; keys there: epochs, batch_size"),
        ("training.epochs=3", "params.yaml has no training; keys there: fetch, preprocess"),
        ("epochs=3", "not of the form section.key=value"),
        ("train_cnn.epochs", "not of the form section.key=value"),
        # A value its stage would refuse: refused here, before any stage (and DVC deleting its outputs).
        ("train_cnn.dense_units=abc", "params.yaml: train_cnn.dense_units = 'abc' is not allowed; expected an "
         "integer >= 1"),
        ("train_mlp.dropout=1.5", "params.yaml: train_mlp.dropout = 1.5 is not allowed"),
    ],
)  # fmt: skip
def test_bad_overrides_are_refused_before_anything_is_written(tmp_path, override, message):
    path = tmp_path / "params.yaml"
    shutil.copy(PROJECT / "params.yaml", path)
    before = path.read_bytes()
    with pytest.raises((ValueError, ParamsError), match=re.escape(message)):
        apply_overrides(["report.seed=1", override], path)
    assert path.read_bytes() == before


def test_a_params_file_a_stage_would_refuse_is_refused_without_overrides_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((PROJECT / "params.yaml").read_text().replace("dense_units: 128", "dense_units: many"))
    with pytest.raises(ParamsError, match="train_cnn.dense_units = 'many' is not allowed"):
        check([], path)


def test_metrics_markdown_tables_both_models(tmp_path):
    path = tmp_path / "evaluate.json"
    assert metrics_markdown(path) is None
    path.write_text('{"mlp": {"accuracy": 0.9, "loss": 0.3, "macro_f1": 0.89},'
                    ' "cnn": {"accuracy": 0.93, "loss": 0.2, "macro_f1": 0.925}}')  # fmt: skip
    assert "| accuracy | 0.9000 | 0.9300 |" in metrics_markdown(path)


# --- invariants, on a real git + DVC repo with tiny params, the flow on Prefect's ephemeral server ---

ALL = ["fetch", "preprocess", "train-mlp", "train-cnn", "evaluate", "report"]
SUMMARY = re.compile(r"^\s+([\w-]+)\s+(ran|skipped|restored)\s+[\d.]+s\s+\(from [\d.]+s\)$", re.M)


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


def run_flow(project, *args):
    """Run the flow in a fresh process; returns {stage: status} from its summary."""
    proc = project.run("python", "-m", "flows", "run", *args, env=project.prefect_env, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return dict(SUMMARY.findall(output)), output


@pytest.mark.slow(minutes=5)
def test_flow_from_nothing_leaves_dvc_with_nothing_to_do(project):
    statuses, output = run_flow(project)
    assert list(statuses) == [s for s in plan(GRAPH, None)]
    assert set(statuses.values()) == {"ran"}
    assert "Running stage 'train-cnn'" in output  # the stage's own output reached the run log
    assert "cnn: kept epoch" in output and tf_startup_lines(output) == []  # without TensorFlow's start-up lines
    assert "up to date" in project.run("dvc", "status").stdout
    assert project.repro() == []


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
def test_flow_override_reruns_exactly_the_affected_stages(project):
    statuses, _ = run_flow(project, "--set", "train_cnn.epochs=2")
    assert {s for s, status in statuses.items() if status == "ran"} == {"train-cnn", "evaluate", "report"}
    assert "epochs: 2" in (project.root / "params.yaml").read_text()
    assert "up to date" in project.run("dvc", "status").stdout


@pytest.mark.slow
def test_a_failing_stage_fails_the_flow_with_its_error_in_the_log(project):
    kept = project.params()["train_mlp"]["dropout"]
    project.set_params(train_mlp={"dropout": 1.5})
    try:
        proc = project.run("python", "-m", "flows", "run", env=project.prefect_env, check=False)
    finally:
        project.set_params(train_mlp={"dropout": kept})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "train_mlp.dropout = 1.5 is not allowed" in output
    assert "flow failed: stage train-mlp failed" in output


@pytest.mark.slow
def test_force_reruns_everything_each_stage_task_run_waiting_for_its_dvc_upstream_stages(project, prefect_server):
    """Prefect's graph draws an edge per task input: each stage's task run must name its
    upstream stages' task runs (wait_for), as dvc.yaml's DAG has them, and nothing else."""
    before = datetime.now(timezone.utc).isoformat()
    statuses, _ = run_flow(project, "--force")
    assert set(statuses) == set(ALL) and set(statuses.values()) == {"ran"}
    assert project.repro() == []
    # The session's server may hold other tests' pipeline runs (a deployment run, a schedule):
    # this run is the one of this project.
    runs = prefect_server.flow_runs(flows={"name": {"any_": ["fmnist-pipeline"]}}, start_time={"after_": before})
    mine = [r for r in runs if r["parameters"].get("project") == str(project.root)]
    assert len(mine) == 1, [(r["name"], r["parameters"], r["deployment_id"], r["parent_task_run_id"]) for r in runs]
    run = mine[0]
    response = httpx.post(f"{prefect_server.api_url}/task_runs/filter",
                          json={"flow_runs": {"id": {"any_": [run["id"]]}}}, timeout=10)  # fmt: skip
    response.raise_for_status()
    task_runs = response.json()
    names = {t["id"]: t["name"] for t in task_runs}
    upstream = {
        t["name"]: {names[i["id"]] for i in t["task_inputs"].get("wait_for", []) if i["input_type"] == "task_run"}
        for t in task_runs
    }
    assert upstream == GRAPH
