"""train-mlp and train-cnn at the same time in the flow, with the record `dvc repro` keeps."""

import json
import textwrap

import pytest
import yaml

from tests.helpers import TINY_PARAMS, Project

pytestmark = pytest.mark.slow(minutes=7)

# Files whose bytes carry a time: Keras stores the save time in a .keras file, the training
# metrics and history hold seconds, and the report shows them. Everything else a run writes
# must be byte for byte what `dvc repro` writes.
TIMED = ("dvclive/train_mlp/metrics.json", "dvclive/train_cnn/metrics.json",
         "dvclive/train_mlp/plots", "dvclive/train_cnn/plots", "reports")  # fmt: skip


def lock_without_times(project: Project) -> dict:
    """dvc.lock with the hashes of TIMED files blanked."""
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            if entry["path"] in TIMED:
                entry.pop("md5"), entry.pop("size"), entry.pop("nfiles", None)
    return lock


@pytest.fixture(scope="module")
def flow_project(tmp_path_factory, prefect_server):
    """A project with the tiny params, committed but never run: the flow's first run starts from
    nothing. Its flow runs go to the session's server."""
    project = Project(tmp_path_factory.mktemp("parallel") / "project")
    project.set_params(**TINY_PARAMS)
    project.commit("tiny params")
    project.prefect_env = prefect_server.env
    return project


def test_a_parallel_run_from_nothing_writes_what_dvc_repro_writes(flow_project, reproduced):
    proc = flow_project.run("python", "-m", "flows", "run", "--jobs", "2", env=flow_project.prefect_env)
    output = proc.stdout + proc.stderr
    assert "Running stage 'train-mlp'" in output and "Running stage 'train-cnn'" in output
    assert "up to date" in flow_project.run("dvc", "status").stdout
    assert flow_project.repro() == []
    # `reproduced` ran the same commit's params with plain `dvc repro`, one stage after another.
    assert lock_without_times(flow_project) == lock_without_times(reproduced)
    assert flow_project.read_json("metrics/evaluate.json") == reproduced.read_json("metrics/evaluate.json")


# Two flow runs in a row in one process (one Prefect start-up), each with new seeds so both trainings
# really run: side by side (jobs=2), then one after the other. Per run: the summary rows and what
# `dvc status` says then.
REPEAT = textwrap.dedent("""
    import json, subprocess, sys
    from flows.pipeline.flow import fmnist_pipeline
    for seed, jobs in [(1, 2), (2, 1)]:
        rows = fmnist_pipeline(targets=["train-mlp", "train-cnn"], jobs=jobs,
                               overrides=[f"train_mlp.seed={seed}", f"train_cnn.seed={seed}"])
        status = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True, check=True).stdout
        sys.stdout.write(json.dumps({"jobs": jobs, "rows": rows, "status": json.loads(status)}) + "\\n")
""")


def test_parallel_runs_in_a_row_keep_dvc_consistent(flow_project):
    proc = flow_project.run("python", "-c", REPEAT, env=flow_project.prefect_env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "Unable to acquire lock" not in proc.stderr and "is busy" not in proc.stderr
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(runs) == 2
    for run in runs:
        rows = {r["stage"]: r for r in run["rows"]}
        mlp, cnn = rows["train-mlp"], rows["train-cnn"]
        assert (mlp["status"], cnn["status"]) == ("ran", "ran"), run
        overlap = min(mlp["started"] + mlp["seconds"], cnn["started"] + cnn["seconds"]) - max(
            mlp["started"], cnn["started"]
        )
        assert overlap > 0 if run["jobs"] == 2 else overlap <= 0, run
        # Both trainings are recorded; evaluate and report are stale, as nothing asked for them.
        assert set(run["status"]) == {"evaluate", "report"}, run["status"]
    assert flow_project.repro() == ["evaluate", "report"]
    assert flow_project.repro() == []


# train-mlp's module as it is, but for its main, which fails at its work (a value a stage would
# refuse is refused before any stage starts: tests/flows/cli/test_commands.py).
MAIN = 'run_main(train_stage, "mlp", build_mlp, MLPParams)'
BROKEN_MAIN = 'run_main(lambda: (_ for _ in ()).throw(StageError("train-mlp cannot train here")))'


def test_a_failing_stage_lets_the_one_beside_it_finish_and_land(flow_project):
    module = flow_project.root / "stages/train_mlp.py"
    kept = module.read_text()
    assert MAIN in kept
    module.write_text(kept.replace(MAIN, BROKEN_MAIN).replace("import run_main", "import StageError, run_main"))
    flow_project.set_params(train_cnn={"seed": 99})
    try:
        proc = flow_project.run("python", "-m", "flows", "run", env=flow_project.prefect_env, check=False)
    finally:
        module.write_text(kept)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "flow failed: stage train-mlp failed: train-mlp cannot train here" in output
    assert "Running stage 'evaluate'" not in output  # nothing starts after a failure
    status = json.loads(flow_project.run("dvc", "status", "--json").stdout)
    assert "train-cnn" not in status  # its run finished and dvc.lock records it
