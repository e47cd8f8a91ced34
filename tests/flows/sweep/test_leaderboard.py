"""The leaderboard: a DataFrame, the best first by the objective, intervals, the points no test tells
apart from the best, seed groups, the printed table within 100 columns, and the CSV."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pandas as pd
import pytest
from prefect.artifacts import TableArtifact

from flows.sweep.leaderboard import format_groups, format_table, leaderboard, seed_groups, varying_keys, write_csv
from stages.lib import stats


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
    assert isinstance(table, pd.DataFrame)
    # Ranked by the objective, validation accuracy, never by a test figure; then pruned, then failed.
    assert table["experiment"].tolist() == ["s-3", "s-1", "s-4", "s-2"]
    # Wilson, 450 of 500: a fraction, as the accuracy beside it is.
    assert (table.at[0, "cnn_val_accuracy_ci_low"], table.at[0, "cnn_val_accuracy_ci_high"]) == pytest.approx(
        stats.wilson(450, 500)
    )
    assert stats.wilson(450, 500) == pytest.approx((0.8706, 0.9233), abs=5e-5)
    assert "t.lr" in table.columns and "t.seed" not in table.columns  # only the params that vary
    assert table["cnn_val_accuracy"].tolist()[:2] == [0.9, 0.8] and table["cnn_val_accuracy"][2:].isna().all()
    printed = format_table(table).splitlines()
    assert printed[1].split() == ["s-3", "0.3", "0.9000", "[0.8706,", "0.9233]", "done"]
    assert printed[-2:] == ["s-4: pruned at epoch 1 (val_accuracy 0.1 < median 0.8)",
                            "s-2: params.yaml: t.lr = 0.2 is not allowed"]  # fmt: skip


def test_every_accuracy_like_column_is_a_fraction():
    points = {"s-1": ["t.lr=0.1"], "s-2": ["t.lr=0.2"]}
    rows = [{"experiment": n, "status": "done", "val_images": 1000, "cnn_val_accuracy": a, "mlp_val_accuracy": a - 0.1,
             "cnn_accuracy": a, "mlp_accuracy": a - 0.1, "cnn_macro_f1": a, "mlp_macro_f1": a - 0.1}
            for n, a in (("s-1", 0.93), ("s-2", 0.91))]  # fmt: skip
    table = leaderboard(rows, points, ["t.lr"])
    accuracy_like = [c for c in table.columns if "accuracy" in c or "macro_f1" in c]
    assert len(accuracy_like) == 8
    assert ((table[accuracy_like] > 0) & (table[accuracy_like] < 1)).all().all()


def test_the_printed_leaderboard_shows_drawn_values_to_four_digits_and_given_ones_as_given():
    given = {"a.lr": "0.00927765733047727", "a.units": "211", "a.dropout": "0.25", "a.tiny": "0.00003",
             "a.f": "[32,64]"}  # fmt: skip
    points = {"s-1": [f"{k}={v}" for k, v in given.items()], "s-2": [f"{k}=0" for k in given]}
    rows = [{"experiment": "s-1", "status": "done", "cnn_val_accuracy": 0.5}, {"experiment": "s-2", "status": "done"}]
    header, line, _ = format_table(leaderboard(rows, points, varying_keys(points))).splitlines()
    assert header.split()[:6] == ["experiment", "lr", "units", "dropout", "tiny", "f"]  # the keys' last parts
    assert line.split() == ["s-1", "0.009278", "211", "0.25", "0.00003", "[32,64]", "0.5000", "done"]


def test_the_printed_leaderboard_fits_100_columns_however_many_params_vary_and_however_long():
    keys = [f"train_cnn.{name}" for name in ("filters", "learning_rate", "dense_units", "dense_dropout",
            "conv_dropout", "convs_per_block", "label_smoothing", "weight_decay", "batch_size", "epochs")]  # fmt: skip
    points = {f"a-very-long-sweep-name-given-by-hand-{i}": [f"{keys[0]}=[32,64,128,256,512,{i}]"] +
              [f"{key}={i / 7}" for key in keys[1:]] for i in range(1, 13)}  # fmt: skip
    rows = [{"experiment": name, "status": "done", "cnn_val_accuracy": 0.9 - i / 100, "val_images": 5000,
             "cnn_accuracy": 0.9 - i / 100} for i, name in enumerate(points)]  # fmt: skip
    rows[-1] |= {"status": "failed", "error": "a stage's error " * 12, "cnn_val_accuracy": None}
    labels = np.arange(5000) % 10
    answers = {name: {"cnn": np.where(np.arange(5000) < 100 * i, (labels + 1) % 10, labels), "mlp": labels}
               for i, name in enumerate(points)}  # fmt: skip
    table = leaderboard(rows, points, varying_keys(points), (labels, answers))
    printed = format_table(table).splitlines()
    assert max(map(len, printed)) <= 100, "\n".join(printed)
    header = printed[0].split()
    assert header[0] == "experiment" and header[-5:] == ["cnn_val_accuracy", "[95%", "CI]", "vs_best", "status"]
    # Each row: its experiment (long names cut in the middle, the number kept), its status last.
    names = [line.split()[0] for line in printed[1:13]]
    assert all(len(name) == 24 and name.startswith("a-very-long-sweep-na") for name in names)
    assert [name.rsplit("…-", 1)[1] for name in names] == [str(i) for i in range(1, 13)]
    assert printed[2].split()[1:] == ["[32,64,128,256,…", "0.2857", "0.8900", "[0.8810,", "0.8984]", "worse",
                                      "p<0.001", "done"]  # fmt: skip
    assert printed[12].split()[-1] == "failed"
    # Params named by their initials, with a legend; those that still do not fit are named under the table.
    assert header[1:3] == ["f", "lr"] and printed[13] == "f=train_cnn.filters, lr=train_cnn.learning_rate"
    notes = " ".join(" ".join(printed[14:]).split())
    assert notes.startswith("not shown: train_cnn.dense_units, train_cnn.dense_dropout, ")
    assert "train_cnn.epochs (every column: the CSV and the Prefect artifact)" in notes
    error = "a stage's error " * 12
    assert notes.endswith(f"a-very-long-sweep-name-given-by-hand-12: {error.strip()}")


def test_the_leaderboard_marks_the_points_no_test_tells_apart_from_the_best():
    labels = np.arange(2000) % 10

    def answers(wrong: int) -> dict:
        predicted = labels.copy()
        predicted[:wrong] = (labels[:wrong] + 1) % 10  # the same hard images, more of them
        return {"cnn": predicted, "mlp": labels}

    # s-2 breaks 4 images of s-1 and fixes none: mid-p 2/16 - 1/16; s-3 breaks 100; s-5 fixes 100.
    test = (labels, {"s-1": answers(100), "s-2": answers(104), "s-3": answers(200), "s-5": answers(0)})
    points = {f"s-{i}": [f"t.lr=0.{i}"] for i in range(1, 6)}
    rows = [
        {"experiment": "s-1", "status": "done", "cnn_val_accuracy": 0.95, "cnn_accuracy": 0.95},
        {"experiment": "s-2", "status": "done", "cnn_val_accuracy": 0.948, "cnn_accuracy": 0.948},
        {"experiment": "s-3", "status": "done", "cnn_val_accuracy": 0.90, "cnn_accuracy": 0.90},
        {"experiment": "s-4", "status": "failed", "error": "a stage failed"},
        {"experiment": "s-5", "status": "done", "cnn_val_accuracy": 0.89, "cnn_accuracy": 1.0},
    ]
    table = leaderboard(rows, points, ["t.lr"], test)
    assert table["experiment"].tolist() == ["s-1", "s-2", "s-3", "s-5", "s-4"]
    assert table["vs_best"].tolist()[:4] == ["best", "tie", "worse", "better"] and pd.isna(table.at[4, "vs_best"])
    assert table.at[1, "vs_best_p"] == pytest.approx(0.0625) and table.at[2, "vs_best_p"] < 0.001
    assert table[["vs_best_p"]].iloc[[0, 4]].isna().all().all()
    columns = list(table.columns)
    assert columns[columns.index("cnn_accuracy") + 1 :][:2] == ["vs_best", "vs_best_p"]  # beside the test accuracy
    assert [line.split()[-3:] for line in format_table(table).splitlines()[2:4]] == [
        ["tie", "p=0.062", "done"], ["worse", "p<0.001", "done"]]  # fmt: skip


def test_points_that_differ_only_in_seeds_are_grouped_with_mean_and_std():
    points = {f"s-{i}": [f"t.lr={lr}", f"t.seed={seed}"] for i, (lr, seed) in
              enumerate([(lr, seed) for lr in ("0.1", "0.2") for seed in ("1", "2", "3")], start=1)}  # fmt: skip
    accuracies = [0.80, 0.82, 0.81, 0.90, 0.93, 0.91]
    rows = [{"experiment": name, "status": "done", "cnn_val_accuracy": acc, "cnn_accuracy": acc - 0.01,
             "mlp_accuracy": 0.5 + i / 100}
            for i, (name, acc) in enumerate(zip(points, accuracies, strict=True))]  # fmt: skip
    rows.append({"experiment": "s-7", "status": "failed", "error": "no"})
    points["s-7"] = ["t.lr=0.2", "t.seed=4"]
    table = leaderboard(rows, points, varying_keys(points))
    groups = seed_groups(table, varying_keys(points))
    assert groups["t.lr"].tolist() == ["0.2", "0.1"]  # the better objective first
    assert groups["points"].tolist() == [3, 3]  # finished ones only
    for lr, members in (("0.1", accuracies[:3]), ("0.2", accuracies[3:])):
        group = groups.set_index("t.lr").loc[lr]
        assert group["cnn_val_accuracy_mean"] == pytest.approx(statistics.mean(members))
        assert group["cnn_val_accuracy_std"] == pytest.approx(statistics.stdev(members))  # n - 1
        assert group["cnn_accuracy_mean"] == pytest.approx(statistics.mean(members) - 0.01)
        assert (group["cnn_accuracy_min"], group["cnn_accuracy_max"]) == pytest.approx(
            (min(members) - 0.01, max(members) - 0.01)
        )
    assert format_groups(groups).splitlines()[1].split() == [
        "0.2", "3", "0.9133", "±", "0.0153", "0.5400", "±", "0.0100", "0.9033", "±", "0.0153"]  # fmt: skip
    assert seed_groups(table, ["t.lr"]).empty  # no seed varies: no groups
    (alone,) = seed_groups(table, ["t.seed"]).to_dict("records")  # only seeds vary: one group
    assert alone["points"] == 6 and alone["cnn_val_accuracy_std"] == pytest.approx(statistics.stdev(accuracies))


def test_the_csv_and_the_prefect_table_hold_the_same_frame(tmp_path):
    points = {"s-1": ["t.lr=0.001", "t.f=[32,64]"], "s-2": ["t.lr=0.002", "t.f=[16,32]"], "s-3": ["t.lr=3", "t.f=1"]}
    rows = [
        {"experiment": "s-1", "status": "done", "cnn_val_accuracy": 0.8123456789, "val_images": 500,
         "cnn_accuracy": 1 / 3, "where": "machine-1", "lost_on": "", "ran": "train-cnn, evaluate", "seconds": 12.5},
        {"experiment": "s-2", "status": "pruned", "error": "pruned at epoch 1 (val_accuracy 0.1 < median 0.8)",
         "where": "machine-2", "lost_on": "machine-1, machine-3"},
        {"experiment": "s-3", "status": "failed", "error": 'a "quoted", comma, and\na second line'},
    ]  # fmt: skip
    labels = np.arange(10) % 10
    table = leaderboard(rows, points, varying_keys(points), (labels, {"s-1": {"cnn": labels, "mlp": labels}}))
    path = tmp_path / "leaderboard.csv"
    write_csv(table, path)
    # The params are the text given to -S (as `dvc exp run -S` takes them): read as text, they come back as given.
    read = pd.read_csv(path, dtype=table.dtypes.to_dict())
    pd.testing.assert_frame_equal(read, table)
    assert pd.read_csv(path)["t.lr"].tolist() == [0.001, 0.002, 3.0]  # as numbers, left to pandas
    artifact = json.loads(TableArtifact(table=table.to_dict("records")).format(_sync=True))
    assert [list(row) for row in artifact] == [list(table.columns)] * 3
    assert artifact[0]["cnn_val_accuracy"] == 0.8123456789 and artifact[0]["vs_best"] == "best"
    assert artifact[1]["lost_on"] == "machine-1, machine-3" and artifact[0]["lost_on"] is None  # no NaN in JSON
    assert format_table(artifact) == format_table(table)  # the artifact's rows print as the frame does
