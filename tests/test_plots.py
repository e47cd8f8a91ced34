"""What `dvc plots show` and `dvc plots diff` draw: the stages' plots in dvc.yaml and nothing else
(accuracy and loss per epoch of both models, both confusion matrices), each once and each with the
data its template draws, rendered by DVC itself in a real git + DVC repo."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import yaml

from stages.lib.idx import CLASS_NAMES
from tests.helpers import CURATED_PLOTS, Project

pytestmark = pytest.mark.slow(minutes=2)

Drawn = dict[str, list[dict[str, Any]]]  # `dvc plots ... --json`'s data: each plot drawn, by its file
SERIES = {"MLP training", "MLP validation", "CNN training", "CNN validation"}


def _definitions(project: Project) -> dict[str, dict[str, Any]]:
    """Every stage's plots in dvc.yaml, by file, with their properties."""
    stages = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"].values()
    return {path: props for stage in stages for entry in stage.get("plots", []) for path, props in entry.items()}


def _drawn(project: Project, *command: str) -> Drawn:
    """`dvc plots <command> --json`: each plot DVC draws, by its file."""
    rendered = json.loads(project.run("dvc", "plots", *command, "--json").stdout)
    assert "errors" not in rendered, rendered["errors"]
    return rendered["data"]


def _encoded_fields(spec: Any, channel: str) -> set[str]:
    """The data fields a Vega-Lite spec puts on `channel` ("x", "color", ...), in its layers and facets too."""
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
    """Asserts that `drawn` is exactly the curated plots, each drawn once over `revisions` with its
    title and template, each revision with rows of the kind its template draws: (epoch, value) per
    epoch of every model's training and validation curve, a colour per curve and a line style per
    revision, for a learning curve; (actual, predicted) class names per test image for a confusion
    matrix.

    Returns the epochs of each curve, by (file, revision, series)."""
    assert set(drawn) == set(definitions) == set(CURATED_PLOTS)
    epochs = {}
    for path, (title, template) in CURATED_PLOTS.items():
        assert definitions[path]["template"] == template and definitions[path]["cache"] is False, path
        (plot,) = drawn[path]  # drawn once
        assert plot["type"] == "vega" and set(plot["revisions"]) == revisions, (path, plot["revisions"])
        spec = plot["content"]
        assert spec["title"]["text"] == title, path
        rows = spec["data"]["values"]
        x, y = _encoded_fields(spec, "x"), _encoded_fields(spec, "y")
        if template == "learning_curves":  # .dvc/plots/learning_curves.json
            assert (x, y) == ({"epoch"}, {"value"}), (path, x, y)
            assert (_encoded_fields(spec, "color"), _encoded_fields(spec, "strokeDash")) == ({"series"}, {"rev"})
            assert set(spec["encoding"]["color"]["scale"]["domain"]) == SERIES  # a colour for each curve
            for rev in revisions:
                assert {row["series"] for row in rows if row["rev"] == rev} == SERIES, (path, rev)
                for series in SERIES:
                    points = [row for row in rows if row["rev"] == rev and row["series"] == series]
                    assert [int(row["epoch"]) for row in points] == list(range(1, len(points) + 1)), (path, rev)
                    assert all(_is_number(row["value"]) for row in points), (path, rev, series)
                    epochs[path, rev, series] = len(points)
        else:
            assert (x, y) == ({"actual"}, {"predicted"}), (path, x, y)
            for rev in revisions:
                pairs = [(row["actual"], row["predicted"]) for row in rows if row["rev"] == rev]
                assert len(pairs) == test_images, (path, rev, len(pairs))
                assert {label for pair in pairs for label in pair} <= set(CLASS_NAMES), (path, rev)
    return epochs


def test_plots_show_draws_the_curated_plots_only(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    test_images = project.read_json("data/processed/stats.json")["splits"]["test"]["count"]
    assert_curated_plots(_drawn(project, "show"), _definitions(project), {"workspace"}, test_images)


def test_plots_diff_draws_the_curated_plots_of_both_commits(mlp_retrained, tmp_path):
    project = mlp_retrained.copy_to(tmp_path / "project")  # its MLP trained 1 epoch at HEAD~1, 3 at HEAD
    assert mlp_retrained.ran == ["train-mlp", "evaluate", "report"]
    test_images = project.read_json("data/processed/stats.json")["splits"]["test"]["count"]
    drawn = _drawn(project, "diff", "HEAD~1", "HEAD")
    epochs = assert_curated_plots(drawn, _definitions(project), {"HEAD~1", "HEAD"}, test_images)
    # Each commit's own curves: the MLP's grew by two epochs, the CNN's did not change.
    accuracy = {(rev, series): n for (path, rev, series), n in epochs.items() if path.endswith("/accuracy.csv")}
    assert accuracy == {(rev, f"{model} {split}"): 3 if (rev, model) == ("HEAD", "MLP") else 1
                        for rev in ("HEAD~1", "HEAD") for model in ("MLP", "CNN")
                        for split in ("training", "validation")}  # fmt: skip
