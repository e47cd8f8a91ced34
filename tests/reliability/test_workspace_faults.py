"""Concurrent runs, damaged artifacts and bad params, each in a real reproduced project."""

import subprocess

import pytest
import yaml

from tests.helpers import tool_env

pytestmark = pytest.mark.slow(minutes=5)


def _stage(project, module):
    """Run one stage's main directly; returns (exit code, stderr)."""
    proc = project.run("python", "-m", f"stages.{module}", check=False)
    return proc.returncode, proc.stderr


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def _repro_in_train_cnn(project) -> subprocess.Popen:
    """A `dvc repro` that is busy training the CNN (for a few seconds) when this returns."""
    project.set_params(train_cnn={"epochs": 8, "patience": 8})
    proc = subprocess.Popen(
        ["dvc", "repro"], cwd=project.root, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in proc.stdout:
        if "Running stage 'train-cnn'" in line:
            break
    return proc


def test_a_second_repro_or_a_flow_run_during_a_repro_stops_with_a_clear_message_and_the_first_finishes(
    project, embedded_prefect_env
):
    first = _repro_in_train_cnn(project)
    # The flow (its temporary Prefect server takes the longest to start) and a second `dvc repro`,
    # both while the first is training.
    flow = subprocess.Popen(["python", "-m", "flows", "run"], cwd=project.root, env=embedded_prefect_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    second = project.run("dvc", "repro", check=False)
    flow_output, _ = flow.communicate(timeout=300)
    first.stdout.read()
    assert first.wait(300) == 0
    # DVC locks what a running stage reads and writes; the second run names the blocker.
    assert second.returncode != 0
    assert "is busy, it is being blocked by" in second.stderr and "dvc repro" in second.stderr, second.stderr
    assert flow.returncode == 1, flow_output[-3000:]
    assert "is busy, it is being blocked by" in flow_output
    assert "stages" in yaml.safe_load((project.root / "dvc.lock").read_text())
    assert "up to date" in project.run("dvc", "status").stdout


def test_a_damaged_model_names_the_file_and_the_fix(project):
    (project.root / "models/cnn.keras").write_bytes(b"\x00" * 100)
    code, stderr = _stage(project, "evaluate")
    assert code == 1
    line = _one_line_error(stderr)
    assert "models/cnn.keras cannot be loaded" in line
    assert "dvc checkout --force models/cnn.keras" in line and "dvc repro -f train-cnn" in line
    project.run("dvc", "checkout", "--force", "models/cnn.keras")  # the fix it names works
    assert _stage(project, "evaluate")[0] == 0


def test_a_damaged_array_file_names_the_file_and_the_fix(project):
    path = project.root / "data/processed/test.npz"
    path.write_bytes(path.read_bytes()[:1000])
    code, stderr = _stage(project, "evaluate")
    assert code == 1
    line = _one_line_error(stderr)
    assert "data/processed/test.npz is unreadable" in line
    assert "dvc checkout --force data/processed/test.npz" in line
    project.run("dvc", "checkout", "--force", "data/processed/test.npz")
    assert _stage(project, "evaluate")[0] == 0


@pytest.mark.parametrize(
    ("module", "section", "change", "message"),
    [
        ("train_cnn", "train_cnn", {"epoch": 3}, "unknown key train_cnn.epoch; allowed keys are epochs"),
        ("train_cnn", "train_cnn", {"conv_dropout": 1.0}, "train_cnn.conv_dropout = 1.0 is not allowed"),
        ("train_mlp", "train_mlp", {"learning_rate": -0.1}, "train_mlp.learning_rate = -0.1 is not allowed"),
        ("preprocess", "preprocess", {"normalize": "minmax"}, "expected one of 'scale', 'standardize'"),
        ("preprocess", "preprocess", {"val_size": 5000}, "val_size = 5000 gives 5000 validation images out of 2000"),
        ("fetch", "fetch", {"sources": "/usr/share"}, "fetch.sources = '/usr/share' is not allowed"),
    ],
)
def test_bad_params_stop_a_stage_before_it_writes_anything(project, module, section, change, message):
    project.set_params(**{section: change})
    before = {p: p.stat().st_mtime_ns for p in project.root.glob("data/**/*") if p.is_file()}
    code, stderr = _stage(project, module)
    assert code == 1
    assert message in _one_line_error(stderr)
    assert {p: p.stat().st_mtime_ns for p in project.root.glob("data/**/*") if p.is_file()} == before


def _outputs(project) -> dict[str, bytes]:
    """Every file of the training stages' outputs, and params.yaml, by path."""
    root = project.root
    files = [root / "params.yaml", *root.glob("models/*.keras"), *root.glob("dvclive/**/*"), *root.glob("metrics/*"),
             *root.glob("plots/**/*")]  # fmt: skip
    return {str(f.relative_to(root)): f.read_bytes() for f in files if f.is_file()}


def test_a_refused_value_after_an_uncommitted_run_costs_none_of_its_results(project, tmp_path):
    """A successful run not yet committed, then a value a stage refuses: through `fmnist-flow run
    --set` nothing starts and nothing changes; through plain `dvc repro` (which deletes a stage's
    outputs before its command runs) the stage puts its DVCLive summary back, and its last line names
    the command that puts back the model and DVCLive's TSVs (DVC outputs)."""
    project.set_params(train_cnn={"seed": 5})
    assert project.repro() == ["train-cnn", "evaluate", "report"]
    before = _outputs(project)
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    flow = project.run("python", "-m", "flows", "run", "--set", "train_cnn.dense_units=abc", env=env, check=False)
    assert flow.returncode == 1
    last = flow.stderr.strip().splitlines()[-1]
    assert "train_cnn.dense_units = 'abc' is not allowed; expected an integer >= 1" in last, flow.stderr[-2000:]
    assert "Running stage" not in flow.stdout + flow.stderr
    assert _outputs(project) == before  # params.yaml too: the refused --set was never written

    project.set_params(train_cnn={"dense_units": "abc"})
    repro = project.run("dvc", "repro", check=False)
    assert repro.returncode != 0
    # The stage's own error line (its logger is the training loop's module: stages.lib.training).
    output = repro.stdout + repro.stderr
    cause = next((line for line in output.splitlines() if " ERROR stages." in line), output[-3000:])
    assert "train_cnn.dense_units = 'abc' is not allowed" in cause
    assert cause.endswith("`dvc checkout train-cnn` puts back the last run's models/cnn.keras, dvclive/train_cnn/plots")
    deleted = ("models/cnn.keras", "dvclive/train_cnn/plots/")  # by DVC, before the stage ran
    after = _outputs(project)
    assert not [path for path in after if path.startswith(deleted)]
    assert {k: v for k, v in after.items() if k != "params.yaml"} == {
        k: v for k, v in before.items() if k != "params.yaml" and not k.startswith(deleted)
    }  # the rest, DVCLive's summary among it, put back byte for byte
    project.run("dvc", "checkout", "train-cnn")  # the command the line names
    project.set_params(train_cnn={"dense_units": yaml.safe_load(before["params.yaml"])["train_cnn"]["dense_units"]})
    assert _outputs(project) == before
    assert "up to date" in project.run("dvc", "status").stdout
