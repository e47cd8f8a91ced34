"""A DVC remote as the team's shared cache: what one clone computed, another pulls and never recomputes."""

import json
from collections import Counter

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.helpers import Project

pytestmark = pytest.mark.slow(minutes=4)

ARTIFACTS = ("models/mlp.keras", "models/cnn.keras", "data/predictions/test.npz", "reports/report.html")


def clone(source: Project, root) -> Project:
    """A fresh `git clone`: the commit only, no DVC cache, no outputs."""
    source.run("git", "clone", "-q", str(source.root), str(root))
    return Project.existing(root)


@pytest.fixture(scope="module")
def shared(reproduced, tmp_path_factory):
    """Clone A: the tiny pipeline, a committed default remote in a temp dir, a param variation
    tried and given up, and everything pushed with the run-cache (`fmnist-flow push`: plain
    `dvc push --run-cache` leaves the variation's metrics behind)."""
    base = tmp_path_factory.mktemp("shared")
    a = reproduced.copy_to(base / "a")
    a.run("dvc", "remote", "add", "-d", "shared", str(base / "remote"))
    a.commit("shared DVC remote")
    a.set_params(train_cnn={"seed": 5})
    assert a.repro() == ["train-cnn", "evaluate", "report"]
    a.variation = a.read_json("metrics/evaluate.json")
    a.run("python", "-m", "flows", "push")
    a.run("git", "checkout", "--", ".")  # back to the commit: params, dvc.lock, metrics
    a.run("dvc", "checkout")  # and its outputs, from the local cache
    assert a.repro() == []
    a.run("python", "-m", "flows", "push")
    return a


def test_the_run_cache_records_every_stage(reproduced):
    """DVC saves no run of a stage with a plain `cache: false` output (only its metrics and plots may
    be uncached), and then no other machine can restore that stage: every stage has a record."""
    stages = yaml.safe_load((reproduced.root / "dvc.yaml").read_text())["stages"]
    runs = reproduced.root / reproduced.run("dvc", "cache", "dir").stdout.strip() / "runs"
    recorded = Counter(yaml.safe_load(record.read_text())["cmd"] for record in runs.rglob("*") if record.is_file())
    assert recorded == {stage["cmd"]: 1 for stage in stages.values()}


def test_a_fresh_clone_pulls_and_reruns_nothing(shared, tmp_path):
    b = clone(shared, tmp_path / "b")
    assert not (b.root / "models/cnn.keras").exists()
    b.run("dvc", "pull", "--run-cache")
    assert "up to date" in b.run("dvc", "status").stdout
    assert b.repro() == []
    assert b.read_json("metrics/evaluate.json") == shared.read_json("metrics/evaluate.json")
    for path in ARTIFACTS:
        assert (b.root / path).read_bytes() == (shared.root / path).read_bytes(), path


def test_params_another_clone_already_ran_are_restored_not_recomputed(shared, tmp_path):
    b = clone(shared, tmp_path / "b")
    b.run("dvc", "pull")
    b.set_params(train_cnn={"seed": 5})
    # --pull: the remote's run-cache, and the outputs of the run it finds, fetched as needed.
    out = b.run("dvc", "repro", "--pull").stdout
    assert "Running stage" not in out
    assert "Stage 'train-cnn' is cached - skipping run, checking out outputs" in out
    assert b.read_json("metrics/evaluate.json") == shared.variation


def test_the_flow_pulls_first_and_pushes_what_it_ran(shared, tmp_path, embedded_prefect_env):
    c = clone(shared, tmp_path / "c")
    env = embedded_prefect_env
    proc = c.run("python", "-m", "flows", "run", "--pull", "--push", "--set", "train_mlp.seed=6", env=env)
    output = proc.stdout + proc.stderr
    # Pulled: fetch, preprocess and train-cnn are up to date at once; the new seed reruns the rest.
    for stage, status in [("fetch", "skipped"), ("train-cnn", "skipped"), ("train-mlp", "ran"), ("report", "ran")]:
        assert f"  {stage:<10}  {status}" in output, output[-3000:]
    # Pushed: another fresh clone with the same params restores train-mlp from the remote.
    d = clone(shared, tmp_path / "d")
    d.set_params(train_mlp={"seed": 6})
    out = d.run("dvc", "repro", "--pull").stdout
    assert "Running stage" not in out and "Stage 'train-mlp' is cached" in out


def test_push_without_a_remote_says_how_to_add_one(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    proc = project.run("python", "-m", "flows", "push", check=False)
    assert proc.returncode == 1
    assert "no default DVC remote to pull from or push to: add one with `dvc remote add -d shared" in proc.stderr


def test_a_registered_model_is_fetched_by_name_and_version_and_predicts_without_a_checkout(shared, tmp_path):
    """The model registry: a commit's CNN registered as a version (a GTO tag, as DVC's registry
    expects), then fetched with `dvc artifacts get` from the bare git repo and the DVC remote, no
    clone; the fetched file alone gives `fmnist-predict` the checkout's answers."""
    commit = shared.run("git", "rev-parse", "HEAD").stdout.strip()
    shared.run("gto", "register", "cnn", commit, "--version", "v1.0.0")
    origin = tmp_path / "origin.git"
    shared.run("git", "clone", "-q", "--bare", str(shared.root), str(origin))
    elsewhere = Project.existing(tmp_path / "serving")
    elsewhere.root.mkdir()
    fetched = elsewhere.root / "cnn.keras"
    elsewhere.run("dvc", "artifacts", "get", str(origin), "cnn", "--rev", "v1.0.0", "-o", str(fetched))
    assert fetched.read_bytes() == (shared.root / "models/cnn.keras").read_bytes()
    # Without a registered version: the file of any commit, by path.
    elsewhere.run("dvc", "get", str(origin), "models/mlp.keras", "--rev", commit, "-o", "mlp.keras")
    assert (elsewhere.root / "mlp.keras").read_bytes() == (shared.root / "models/mlp.keras").read_bytes()

    with np.load(shared.root / "data/processed/test.npz") as test:
        images = test["x"][:5]
    stats = shared.read_json("data/processed/stats.json")
    pixels = np.rint((images.astype(np.float64) * stats["std"] + stats["mean"]) * 255).astype(np.uint8)
    files = []
    for i, image in enumerate(pixels):
        files.append(tmp_path / f"test-{i}.png")
        Image.fromarray(image).save(files[-1])
    served = elsewhere.run("fmnist-predict", "--json", "--model-file", str(fetched), *map(str, files))
    in_checkout = shared.run("fmnist-predict", "--json", "--model", "cnn", *map(str, files))
    assert json.loads(served.stdout) == json.loads(in_checkout.stdout)
    assert not (elsewhere.root / ".dvc").exists() and not (elsewhere.root / ".git").exists()  # no checkout made
