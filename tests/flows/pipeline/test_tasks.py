"""train-mlp and train-cnn at the same time in the flow, with the record `dvc repro` keeps."""

import json
import textwrap

import pytest

pytestmark = pytest.mark.slow(minutes=5)


@pytest.fixture(scope="module")
def flow_project(reproduced, tmp_path_factory, prefect_server):
    """A copy of the session's tiny reproduced project (a run from nothing is
    tests/flows/pipeline/test_flow.py's, checked there against this one). Its flow runs go to the
    session's server."""
    project = reproduced.copy_to(tmp_path_factory.mktemp("parallel") / "project")
    project.prefect_env = prefect_server.env
    return project


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
