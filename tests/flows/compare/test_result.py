"""`fmnist-flow compare` on a real git + DVC repo with tiny params: two commits, two DVC experiments,
a commit against the workspace, revisions that cannot be compared, and each output read back. Whether
two revisions' test splits are one, and a workspace where evaluate never ran, are decided from their
dvc.lock in milliseconds."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from flows.compare.result import CompareError, Revision, check_same_test_split, resolve
from flows.compare.result import compare as compare_revisions
from stages.lib import paths
from tests.helpers import Project

SLOW = pytest.mark.slow(minutes=13)  # the tests on a real git + DVC repo


@pytest.fixture(scope="module")
def history(mlp_retrained, tmp_path_factory) -> Project:
    """The tiny pipeline (HEAD~1), then a commit whose MLP trained three epochs instead of one (HEAD)."""
    assert mlp_retrained.ran == ["train-mlp", "evaluate", "report"]
    return mlp_retrained.copy_to(tmp_path_factory.mktemp("compare") / "project")


def compare(project: Project, *args: str, check: bool = True):
    return project.run("python", "-m", "flows", "compare", *args, check=check)


@SLOW
def test_two_commits_compare_on_their_own_predictions_without_rerunning(history):
    proc = compare(history, "HEAD~1", "HEAD", "--json")
    result = json.loads(proc.stdout)
    assert "Running stage" not in proc.stdout + proc.stderr
    assert result["test_images"] == 1000
    for name in ("mlp", "cnn"):
        found = result["models"][name]
        for key in ("accuracy_a", "accuracy_b", "ci_a", "ci_b", "difference", "difference_ci", "p_value",
                    "fixed", "broken", "verdict"):  # fmt: skip
            assert key in found, key
        metrics_a = json.loads(history.run("git", "show", "HEAD~1:metrics/evaluate.json").stdout)[name]
        metrics_b = history.read_json("metrics/evaluate.json")[name]
        assert (found["accuracy_a"], found["accuracy_b"]) == pytest.approx(
            (metrics_a["accuracy"], metrics_b["accuracy"])
        )
        assert found["ci_b"] == pytest.approx([metrics_b["accuracy_ci_low"], metrics_b["accuracy_ci_high"]], abs=1e-6)
        assert found["difference"] == pytest.approx((found["fixed"] - found["broken"]) / 1000)
        low, high = found["difference_ci"]
        assert low <= found["difference"] <= high
    # The CNN is the same model in both commits; the MLP trained 3 epochs instead of 1.
    cnn = result["models"]["cnn"]
    assert (cnn["fixed"], cnn["broken"], cnn["p_value"], cnn["verdict"]) == (0, 0, 1.0, "no detectable difference")
    mlp = result["models"]["mlp"]
    assert mlp["fixed"] + mlp["broken"] > 0
    assert mlp["verdict"] == ("B is better" if mlp["p_value"] < 0.05 and mlp["difference"] > 0 else
                              "A is better" if mlp["p_value"] < 0.05 else "no detectable difference")  # fmt: skip
    assert set(result["per_class"]["mlp"]) == {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
    }  # fmt: skip
    assert all(c["p_value"] >= c["p_value_unadjusted"] for c in result["per_class"]["mlp"].values())  # Holm
    assert result["mlp_vs_cnn"]["b"]["verdict"] in ("CNN is better", "MLP is better", "no detectable difference")


@SLOW
def test_the_text_and_markdown_say_each_models_verdict(history, tmp_path):
    text = compare(history, "HEAD~1", "HEAD", "--html", str(tmp_path / "page.html")).stdout
    lines = text.splitlines()
    assert lines[0].startswith("A = HEAD~1 (") and "B = HEAD (" in lines[0] and "1,000 test images" in lines[0]
    verdict = re.compile(r"^(mlp|cnn): [+-]\d+\.\d\d points \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\], p (=|<) [\d.e-]+: .+$")
    assert len([line for line in lines if verdict.match(line)]) == 2, text
    page = (tmp_path / "page.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # broken/fixed images, curves, confusion differences
    assert "MLP: the test images B broke and fixed" in page

    markdown = compare(history, "HEAD~1", "HEAD", "--md").stdout
    table = [line for line in markdown.splitlines() if line.startswith("| mlp ") or line.startswith("| cnn ")]
    assert len(table) == 2
    cells = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert cells[0] == "mlp" and re.fullmatch(r"\d+\.\d\d% \[\d+\.\d\d, \d+\.\d\d\]", cells[1])
    assert "- **cnn: +0.00 points" in markdown and "no detectable difference**" in markdown


@SLOW
def test_the_pictures_draw_each_revisions_own_learning_curves(history):
    """DVCLive's TSVs are DVC outputs: each revision's are read from DVC's cache, not from git."""
    found = compare_revisions(history.root, "HEAD~1", "HEAD", pictures=True)
    epochs = {label: {name: len(h["epoch"]) for name, h in models.items()} for label, models in found.histories.items()}
    assert epochs == {found.a.label: {"mlp": 1, "cnn": 1}, found.b.label: {"mlp": 3, "cnn": 1}}


@SLOW
def test_a_dvc_experiment_compares_by_name_and_the_workspace_is_the_default_b(history, tmp_path):
    project = history.copy_to(tmp_path / "project")
    project.run("dvc", "exp", "run", "--name", "exp-mlp-seed-1", "-S", "train_mlp.seed=1")
    result = json.loads(compare(project, "HEAD", "exp-mlp-seed-1", "--json").stdout)
    head = project.run("git", "rev-parse", "HEAD").stdout.strip()
    assert result["a"] == {"revision": "HEAD", "commit": head} and result["b"]["revision"] == "exp-mlp-seed-1"
    assert result["models"]["cnn"]["fixed"] == result["models"]["cnn"]["broken"] == 0  # the same CNN
    assert result["models"]["mlp"]["fixed"] + result["models"]["mlp"]["broken"] > 0  # two seeds, two MLPs
    # `dvc exp run` leaves the experiment's params and outputs in the workspace, uncommitted.
    result = json.loads(compare(project, "--json").stdout)
    assert result["a"] == {"revision": "HEAD", "commit": head}
    assert result["b"] == {"revision": "workspace", "commit": None}
    assert result["models"]["cnn"]["fixed"] == result["models"]["cnn"]["broken"] == 0
    workspace = project.read_json("metrics/evaluate.json")["mlp"]["accuracy"]
    assert result["models"]["mlp"]["accuracy_b"] == pytest.approx(workspace)


@SLOW
def test_revisions_that_cannot_be_compared_are_one_line_each(history, tmp_path):
    # Two test splits: check_same_test_split's, below.
    never = Project(tmp_path / "never")  # a pipeline that never ran: committed without dvc.lock
    never.commit("nothing ran")
    cases = [
        (history, ["nope", "HEAD"], "'nope' is no commit, branch, tag or DVC experiment here"),
        (never, ["HEAD", "HEAD"], "evaluate never ran at HEAD ("),
    ]
    for where, args, message in cases:
        proc = compare(where, *args, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        last = proc.stderr.strip().splitlines()[-1]
        assert message in last and "compare failed" in last, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


@SLOW
def test_predictions_the_cache_lacks_are_read_from_the_dvc_remote_or_named_in_one_line(history, tmp_path):
    project = history.copy_to(tmp_path / "project")
    expected = json.loads(compare(project, "HEAD~1", "HEAD", "--json").stdout)
    # This machine's remote (.dvc/config.local), which every revision sees; one in an uncommitted
    # .dvc/config only the workspace would (a revision reads the config it committed, as `dvc get` did).
    project.run("dvc", "remote", "add", "--local", "-d", "mine", str(tmp_path / "remote"))
    project.run("dvc", "push", "-q", "--all-commits")
    shutil.rmtree(project.root / ".dvc" / "cache")
    assert json.loads(compare(project, "HEAD~1", "HEAD", "--json").stdout) == expected  # from the remote
    shutil.rmtree(tmp_path / "remote")
    proc = compare(project, "HEAD~1", "HEAD", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.search(r"compare failed: data/predictions/test.npz of HEAD~1 \(\w{7}\) is neither in the DVC cache "
                     r"nor on the DVC remote: `dvc push` it from where it was made", last), proc.stderr  # fmt: skip


# --- decided from dvc.lock, in milliseconds ---


def _evaluated(name: str, test_md5: str, test_limit: int, seed: int = 0, raw: str = "raw-1") -> Revision:
    """A revision whose dvc.lock records preprocess's test split and an evaluate stage."""
    rel = lambda path: str(path.relative_to(paths.ROOT))  # noqa: E731
    preprocess = {
        "deps": [{"path": rel(paths.RAW), "md5": raw}],
        "params": {"params.yaml": {"preprocess": {"test_limit": test_limit, "seed": seed}}},
        "outs": [{"path": rel(paths.TEST), "md5": test_md5}],
    }
    lock = {"stages": {"preprocess": preprocess, "evaluate": {"outs": [{"path": rel(paths.PREDICTIONS)}]}}}
    return Revision(name, f"{name}0000000", lock)


def test_revisions_of_one_test_split_compare_and_of_two_are_refused_naming_both():
    check_same_test_split(_evaluated("a", "t1", 1000), _evaluated("b", "t1", 1000))
    # The same images from the same files, limit and seed: one split, whatever its file's bytes.
    check_same_test_split(_evaluated("a", "t1", 1000), _evaluated("b", "t2", 1000))
    with pytest.raises(CompareError) as refused:
        check_same_test_split(_evaluated("a", "t1", 1000), _evaluated("b", "t2", 500, seed=1))
    assert str(refused.value).startswith(
        "a (a000000) and b (b000000) were evaluated on different test images (preprocess.test_limit 1000 and 500, "
        "seed 0 and 1)"
    )


@pytest.mark.parametrize("lock", [None, {"stages": {"preprocess": {}}}], ids=["no dvc.lock", "no evaluate"])
def test_a_workspace_where_evaluate_never_ran_says_what_to_run(tmp_path, lock):
    if lock is not None:
        (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    with pytest.raises(CompareError) as refused:
        resolve(tmp_path, "workspace")
    assert str(refused.value) == (
        "evaluate never ran in the workspace (its dvc.lock records no data/predictions/test.npz): run "
        "`dvc repro evaluate` there, then compare again"
    )
