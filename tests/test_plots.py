"""What `dvc plots show` and `dvc plots diff` draw: dvc.yaml's curated plots and nothing else (accuracy
and loss per epoch of both models, both confusion matrices), each once and each with the data its
template draws, rendered by DVC itself in a real git + DVC repo."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import yaml

from stages.lib.idx import CLASS_NAMES
from tests.helpers import CURATED_PLOTS, Project

pytestmark = pytest.mark.slow(minutes=2)

Drawn = dict[str, list[dict[str, Any]]]  # `dvc plots ... --json`'s data: each plot drawn, by its name


def _definitions(project: Project) -> dict[str, dict[str, Any]]:
    """dvc.yaml's top-level plots, by name."""
    entries = yaml.safe_load((project.root / "dvc.yaml").read_text())["plots"]
    return {name: spec for entry in entries for name, spec in entry.items()}


def _drawn(project: Project, *command: str) -> Drawn:
    """`dvc plots <command> --json`: each plot DVC draws, by its name."""
    rendered = json.loads(project.run("dvc", "plots", *command, "--json").stdout)
    assert "errors" not in rendered, rendered["errors"]
    return rendered["data"]


def _encoded_fields(spec: Any, channel: str) -> set[str]:
    """The data fields a Vega-Lite spec puts on `channel` ("x" or "y"), in its layers and facets too."""
    found = set()
    if isinstance(spec, dict):
        encoding = spec.get("encoding", {})
        if "field" in encoding.get(channel, {}):
            found.add(encoding[channel]["field"])
        nested = [value for key, value in spec.items() if key != "data"]
    else:
        nested = spec if isinstance(spec, list) else []
    for node in nested:
        found |= _encoded_fields(node, channel)
    return found


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def assert_curated_plots(
    drawn: Drawn, definitions: dict[str, dict[str, Any]], revisions: set[str], test_images: int
) -> dict[tuple[str, str, str], int]:
    """Asserts that `drawn` is exactly the curated plots, each drawn once over `revisions`, each
    revision with rows of the kind its template draws: (step, value) per epoch for every file of a
    learning curve, (actual, predicted) class names per test image for a confusion matrix.

    Returns the epochs of each learning curve, by (plot, revision, file)."""
    assert set(drawn) == set(CURATED_PLOTS)
    epochs = {}
    for name, template in CURATED_PLOTS.items():
        assert definitions[name]["template"] == template, name
        (plot,) = drawn[name]  # drawn once
        assert plot["type"] == "vega" and set(plot["revisions"]) == revisions, (name, plot["revisions"])
        spec = plot["content"]
        rows = spec["data"]["values"]
        x, y = _encoded_fields(spec, "x"), _encoded_fields(spec, "y")
        if template == "linear":
            assert (x, y) == ({"step"}, {"dvc_inferred_y_value"}), (name, x, y)
            for rev in revisions:
                for path, field in definitions[name]["y"].items():
                    # DVC names each row's file relative to the files' common directory.
                    series = [row for row in rows if row["rev"] == rev and field in row
                              and path.endswith(row["filename::field"].split("::")[0])]  # fmt: skip
                    assert series, f"{name}: no {field} from {path} at {rev}"
                    assert [int(row["step"]) for row in series] == list(range(len(series))), (name, rev, path)
                    assert all(_is_number(row["dvc_inferred_y_value"]) for row in series), (name, rev, path)
                    assert all(row[field] == row["dvc_inferred_y_value"] for row in series), (name, rev, path)
                    epochs[name, rev, path] = len(series)
        else:
            assert (x, y) == ({"actual"}, {"predicted"}), (name, x, y)
            for rev in revisions:
                pairs = [(row["actual"], row["predicted"]) for row in rows if row["rev"] == rev]
                assert len(pairs) == test_images, (name, rev, len(pairs))
                assert {label for pair in pairs for label in pair} <= set(CLASS_NAMES), (name, rev)
    return epochs


def test_plots_show_draws_the_curated_plots_only(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    test_images = project.read_json("data/processed/stats.json")["splits"]["test"]["count"]
    assert_curated_plots(_drawn(project, "show"), _definitions(project), {"workspace"}, test_images)


def test_plots_diff_draws_the_curated_plots_of_both_commits(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    assert project.params()["train_mlp"]["epochs"] == 1
    project.set_params(train_mlp={"epochs": 2})
    assert project.repro() == ["train-mlp", "evaluate", "report"]
    project.commit("mlp: 2 epochs")
    test_images = project.read_json("data/processed/stats.json")["splits"]["test"]["count"]
    drawn = _drawn(project, "diff", "HEAD~1", "HEAD")
    epochs = assert_curated_plots(drawn, _definitions(project), {"HEAD~1", "HEAD"}, test_images)
    # Each commit's own curves: the MLP's grew by an epoch, the CNN's did not change.
    accuracy = {(rev, path.split("/")[1]): n for (plot, rev, path), n in epochs.items()
                if plot == "Accuracy per epoch" and path.endswith("/accuracy.tsv")}  # fmt: skip
    assert accuracy == {("HEAD~1", "train_mlp"): 1, ("HEAD", "train_mlp"): 2,
                        ("HEAD~1", "train_cnn"): 1, ("HEAD", "train_cnn"): 1}  # fmt: skip
