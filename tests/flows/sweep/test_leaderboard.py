"""The leaderboard: the best first by the objective, intervals, the points no test tells apart from the
best, seed groups, and the printed table."""

from __future__ import annotations

import numpy as np

from flows.sweep.flow import sweep_name
from flows.sweep.leaderboard import format_table, leaderboard, seed_groups, varying_keys


def test_the_leaderboard_puts_the_best_first_and_failures_last():
    points = {"s-1": ["t.lr=0.1", "t.seed=1"], "s-2": ["t.lr=0.2", "t.seed=1"], "s-3": ["t.lr=0.3", "t.seed=1"]}
    rows = [
        {"experiment": "s-1", "status": "done", "cnn_val_accuracy": 0.8, "cnn_accuracy": 0.95, "val_images": 500},
        {"experiment": "s-2", "status": "failed", "error": "params.yaml: t.lr = 0.2 is not allowed"},
        {"experiment": "s-3", "status": "done", "cnn_val_accuracy": 0.9, "cnn_accuracy": 0.85, "val_images": 500},
        {"experiment": "s-4", "status": "pruned", "error": "pruned at epoch 1 (val_accuracy 0.1 < median 0.8)"},
    ]
    points["s-4"] = ["t.lr=0.4", "t.seed=1"]
    table = leaderboard(rows, points, varying_keys(points))
    # Ranked by the objective, validation accuracy, never by a test figure; then pruned, then failed.
    assert [r["experiment"] for r in table] == ["s-3", "s-1", "s-4", "s-2"]
    assert table[0]["cnn_val_accuracy_ci"] == "[87.06, 92.33]"  # Wilson, 450 of 500
    assert "t.lr" in table[0] and "t.seed" not in table[0]  # only the params that vary
    assert "t.lr = 0.2 is not allowed" in format_table(table).splitlines()[-1]
    assert sweep_name("abc", ["x=1,2", "y=3"]) == sweep_name("abc", ["y=3", "x=1,2"]) != sweep_name("abd", ["y=3"])


def test_the_printed_leaderboard_shows_drawn_values_to_four_digits_and_given_ones_as_given():
    row = {"lr": "0.00927765733047727", "units": "211", "dropout": "0.25", "tiny": "0.00003", "f": "[32,64]"}
    _header, line = format_table([row]).splitlines()
    assert line.split() == ["0.009278", "211", "0.25", "0.00003", "[32,64]"]


def test_the_leaderboard_marks_the_points_no_test_tells_apart_from_the_best():
    labels = np.arange(2000) % 10

    def answers(wrong: int) -> dict:
        predicted = labels.copy()
        predicted[:wrong] = (labels[:wrong] + 1) % 10  # the same hard images, more of them
        return {"cnn": predicted, "mlp": labels}

    # s-2 breaks 4 images of s-1 and fixes none: mid-p 2/16 - 1/16; s-3 breaks 100.
    test = (labels, {"s-1": answers(100), "s-2": answers(104), "s-3": answers(200)})
    points = {"s-1": ["t.lr=0.1"], "s-2": ["t.lr=0.2"], "s-3": ["t.lr=0.3"], "s-4": ["t.lr=0.4"]}
    rows = [
        {"experiment": "s-1", "status": "done", "cnn_val_accuracy": 0.95, "cnn_accuracy": 0.95},
        {"experiment": "s-2", "status": "done", "cnn_val_accuracy": 0.948, "cnn_accuracy": 0.948},
        {"experiment": "s-3", "status": "done", "cnn_val_accuracy": 0.90, "cnn_accuracy": 0.90},
        {"experiment": "s-4", "status": "failed", "error": "a stage failed"},
    ]
    table = leaderboard(rows, points, ["t.lr"], test)
    assert [r["vs_best"] for r in table] == ["best", "indistinguishable (p = 0.062)", "worse (p < 0.001)", ""]
    assert list(table[0])[list(table[0]).index("cnn_accuracy") + 1] == "vs_best"  # beside the test accuracy


def test_points_that_differ_only_in_seeds_are_grouped():
    points = {f"s-{i}": [f"t.lr={lr}", f"t.seed={seed}"] for i, (lr, seed) in
              enumerate([(lr, seed) for lr in ("0.1", "0.2") for seed in ("1", "2", "3")], start=1)}  # fmt: skip
    accuracies = [0.90, 0.92, 0.91, 0.80, 0.82, 0.81]
    rows = [{"experiment": name, "status": "done", "cnn_val_accuracy": acc, "cnn_accuracy": acc, "mlp_accuracy": 0.5}
            for name, acc in zip(points, accuracies, strict=True)]  # fmt: skip
    table = leaderboard(rows, points, varying_keys(points))
    groups = seed_groups(table, varying_keys(points))
    assert [(g["t.lr"], g["points"], g["cnn_accuracy"], g["cnn_range"]) for g in groups] == [
        ("0.1", 3, "0.9100 ± 0.0100", "0.9000-0.9200"),
        ("0.2", 3, "0.8100 ± 0.0100", "0.8000-0.8200"),
    ]
    assert seed_groups(table, ["t.lr"]) == []  # no seed varies: no groups
