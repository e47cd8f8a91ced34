"""report: a Markdown and a self-contained HTML report of what training and evaluate produced."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import numpy as np

from stages.lib import figures, params, paths, stats
from stages.lib.document import Block, Figure, Heading, Para, Table, to_html, to_markdown
from stages.lib.files import load_arrays, read_json, write_bytes, write_text
from stages.lib.idx import CLASS_NAMES
from stages.lib.live import read_history
from stages.lib.scoring import confusion_matrix, most_confused
from stages.lib.sections.report import ReportParams
from stages.lib.stage import run_main

log = logging.getLogger("stages.report")
TITLE = "Fashion-MNIST: MLP vs CNN"


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _interval(scores: dict[str, Any]) -> str:
    return stats.interval((scores["accuracy_ci_low"], scores["accuracy_ci_high"]))


def _mlp_against_cnn(probs: dict[str, np.ndarray], labels: np.ndarray) -> str:
    """Whether the CNN's lead is real: McNemar's test on the images where exactly one is right."""
    vs = stats.compare(probs["mlp"].argmax(axis=1) == labels, probs["cnn"].argmax(axis=1) == labels)
    return (
        f"On the same {vs.n:,} test images the CNN gets {vs.fixed:,} right that the MLP gets wrong, and the "
        f"MLP {vs.broken:,} that the CNN gets wrong: CNN - MLP = {vs.summary()} (95% interval; McNemar's "
        f"mid-p): {vs.verdict('the MLP', 'the CNN')}."
    )


def curves_csv(histories: dict[str, dict[str, np.ndarray]], metric: str) -> str:
    """The training and validation curves of `metric` of every model as one table (epoch, series,
    value; a series is "MLP training", "CNN validation", ...), for DVC's plot of that metric."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", "series", "value"])
    for name, h in histories.items():
        for split, key in (("training", metric), ("validation", f"val_{metric}")):
            writer.writerows(
                (int(e), f"{name.upper()} {split}", round(float(v), 6)) for e, v in zip(h["epoch"], h[key], strict=True)
            )
    return out.getvalue()


def build_report(
    p: dict[str, Any],
    evaluation: dict[str, Any],
    training: dict[str, dict[str, Any]],
    histories: dict[str, dict[str, np.ndarray]],
    probs: dict[str, np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
) -> list[Block]:
    """All the report's content; `images` are the test images as the models saw them."""
    names = list(paths.MODELS)
    blocks: list[Block] = [
        Heading("MLP vs CNN"),
        Table(
            ["", *(n.upper() for n in names)],
            [
                ["test accuracy", *(_pct(evaluation[n]["accuracy"]) for n in names)],
                ["95% interval", *(_interval(evaluation[n]) for n in names)],
                ["test loss", *(f"{evaluation[n]['loss']:.4f}" for n in names)],
                ["test macro F1", *(f"{evaluation[n]['macro_f1']:.4f}" for n in names)],
                ["validation accuracy", *(_pct(training[n]["val_accuracy"]) for n in names)],
                ["parameters", *(f"{training[n]['params']:,}" for n in names)],
                ["epochs (kept / run)", *(f"{training[n]['best_epoch']} / {training[n]['epochs_run']}" for n in names)],
                ["training time", *(f"{training[n]['train_seconds']:.0f} s" for n in names)],
            ],
        ),
        Para(_mlp_against_cnn(probs, labels)),
        Heading("Per class (test set)"),
        Table(
            ["class", *(f"{n.upper()} {m}" for n in names for m in ("precision", "recall", "F1"))],
            [
                [
                    cls,
                    *(
                        f"{evaluation[n]['per_class'][cls][m]:.3f}"
                        for n in names
                        for m in ("precision", "recall", "f1")
                    ),
                ]
                for cls in CLASS_NAMES
            ],
        ),
        Heading("Confusion matrices (test set)"),
    ]
    cms = {n: confusion_matrix(labels, probs[n].argmax(axis=1)) for n in names}
    png = figures.plot_confusions({f"{n.upper()} confusion matrix": cms[n] for n in names})
    blocks.append(Figure("confusion", "confusion matrices of both models", png))
    blocks.append(Heading("Most-confused class pairs"))
    blocks.append(
        Table(
            ["model", "actual", "predicted as", "images"],
            [[n.upper(), a, b, str(c)] for n in names for a, b, c in most_confused(cms[n], p["top_confusions"])],
        )
    )
    blocks += [
        Heading("Learning curves"),
        Figure(
            "learning_curves",
            "training and validation accuracy and loss per epoch",
            figures.plot_learning_curves(histories),
        ),
        Heading("Accuracy vs training time"),
        Para(
            "Validation accuracy after each epoch against the training seconds spent so far: "
            "where a curve flattens, more epochs buy little."
        ),  # fmt: skip
        Figure(
            "accuracy_vs_time",
            "validation accuracy against cumulative training time",
            figures.plot_accuracy_vs_time(histories),
        ),
        Heading("Predictions on test images"),
        Para("Green: predicted class and its probability, right. Red: wrong, with the true class below."),
    ]
    pick = np.sort(
        np.random.default_rng(p["seed"]).choice(labels.size, min(p["grid_size"], labels.size), replace=False)
    )
    for n in names:
        png = figures.plot_predictions(images[pick], labels[pick], probs[n][pick], f"{n.upper()} predictions")
        blocks.append(Figure(f"predictions_{n}", f"{n.upper()} predictions on test images", png))
    return blocks


def main() -> None:
    p = params.load("report", ReportParams)
    evaluation = read_json(paths.EVALUATION)
    training = {n: read_json(paths.training_metrics_file(n)) for n in paths.MODELS}
    histories = {n: read_history(n) for n in paths.MODELS}
    keys = tuple(map(paths.predictions_key, paths.MODELS))
    probs = dict(zip(paths.MODELS, load_arrays(paths.PREDICTIONS, keys), strict=True))
    images, labels = load_arrays(paths.TEST)
    blocks = build_report(p, evaluation, training, histories, probs, images, labels)
    for b in blocks:
        if isinstance(b, Figure):
            write_bytes(paths.REPORTS_DIR / "figures" / f"{b.name}.png", b.png)
    for metric in paths.CURVES:
        write_text(paths.curve_file(metric), curves_csv(histories, metric))
    write_text(paths.REPORTS_DIR / "report.md", to_markdown(blocks, TITLE))
    write_text(paths.REPORTS_DIR / "report.html", to_html(blocks, TITLE))
    log.info("report: %s and %s", paths.REPORTS_DIR / "report.md", paths.REPORTS_DIR / "report.html")


if __name__ == "__main__":
    run_main(main)
