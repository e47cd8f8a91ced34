import numpy as np

from stages.lib.document import Figure, Heading, Para, Table
from stages.lib.idx import CLASS_NAMES
from stages.report import build_report, curves_csv
from tests.conftest import synthetic_split

P = {"grid_size": 9, "top_confusions": 3, "seed": 0}


def _inputs():
    images, labels = synthetic_split(60, seed=0)
    rng = np.random.default_rng(0)
    probs = {n: rng.dirichlet(np.ones(10), size=60).astype(np.float32) for n in ("mlp", "cnn")}
    per_class = {c: {"precision": 0.5, "recall": 0.5, "f1": 0.5} for c in CLASS_NAMES}
    evaluation = {n: {"accuracy": 0.9, "accuracy_ci_low": 0.89, "accuracy_ci_high": 0.91, "loss": 0.3,
                      "macro_f1": 0.89, "per_class": per_class} for n in probs}  # fmt: skip
    training = {
        n: {
            "best_epoch": 2,
            "epochs_run": 3,
            "val_accuracy": 0.91,
            "val_loss": 0.3,
            "train_seconds": 12.0,
            "params": 1234,
        }  # fmt: skip
        for n in probs
    }
    epochs = np.arange(1.0, 4.0)
    history = {"epoch": epochs, "loss": 1 / epochs, "accuracy": 0.8 + epochs / 100, "val_loss": 1 / epochs,
               "val_accuracy": 0.8 + epochs / 50, "seconds": np.full(3, 4.0)}  # fmt: skip
    return P, evaluation, training, {"mlp": history, "cnn": history}, probs, images, labels


def test_report_has_every_section_and_figure():
    blocks = build_report(*_inputs())
    headings = [b.text for b in blocks if isinstance(b, Heading)]
    assert headings == [
        "MLP vs CNN", "Per class (test set)", "Confusion matrices (test set)", "Most-confused class pairs",
        "Learning curves", "Accuracy vs training time", "Predictions on test images",
    ]  # fmt: skip
    figures = {b.name: b.png for b in blocks if isinstance(b, Figure)}
    assert set(figures) == {"confusion", "learning_curves", "accuracy_vs_time", "predictions_mlp", "predictions_cnn"}
    assert all(png.startswith(b"\x89PNG") for png in figures.values())
    comparison = next(b for b in blocks if isinstance(b, Table))
    assert comparison.rows[0] == ["test accuracy", "90.00%", "90.00%"]
    assert comparison.rows[1] == ["95% interval", "[89.00, 91.00]", "[89.00, 91.00]"]
    verdict = next(b.text for b in blocks if isinstance(b, Para))
    assert verdict.startswith("On the same 60 test images the CNN gets ") and "McNemar" in verdict
    assert verdict.endswith(": no detectable difference.")  # two random guessers
    pairs = [b for b in blocks if isinstance(b, Table)][2]
    assert len(pairs.rows) == 6 and all(int(r[3]) > 0 for r in pairs.rows)


def test_the_curves_dvc_draws_are_one_row_per_model_split_and_epoch():
    *_, histories, _, _, _ = _inputs()
    histories["mlp"] = {key: values[:2] for key, values in histories["mlp"].items()}  # stopped early
    lines = curves_csv(histories, "accuracy").splitlines()
    assert lines[0] == "epoch,series,value"
    assert lines[1:] == [
        "1,MLP training,0.81", "2,MLP training,0.82", "1,MLP validation,0.82", "2,MLP validation,0.84",
        "1,CNN training,0.81", "2,CNN training,0.82", "3,CNN training,0.83",
        "1,CNN validation,0.82", "2,CNN validation,0.84", "3,CNN validation,0.86",
    ]  # fmt: skip
    assert curves_csv(histories, "loss").splitlines()[2] == "2,MLP training,0.5"
