"""report: a Markdown and a self-contained HTML report of what training and evaluate produced."""

from __future__ import annotations

import base64
import csv
import html
import io
import logging
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages import params, paths  # noqa: E402
from stages.idx import CLASS_NAMES  # noqa: E402
from stages.io import load_arrays, read_json, run_main, write_bytes, write_text  # noqa: E402
from stages.metrics import confusion_matrix, most_confused  # noqa: E402

log = logging.getLogger("stages.report")

MODELS = {"mlp": "MLP", "cnn": "CNN"}


class ReportParams(params.Section):
    grid_size: params.integer(1, 100)
    """Test images shown per model, with their predictions."""
    top_confusions: params.integer(1, 90)
    """Most-confused class pairs listed per model."""
    seed: params.integer(0)
    """Which test images the grid shows."""


RIGHT, WRONG = "#1a7f37", "#cf222e"


# A report is a list of blocks, rendered twice: to Markdown (figures as files) and to HTML
# (figures embedded), so the two never drift apart.
@dataclass
class Heading:
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    name: str
    alt: str
    png: bytes


Block = Heading | Para | Table | Figure


def to_markdown(blocks: list[Block], title: str) -> str:
    out = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            out += [f"## {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(b.header))) + "|")
            out += ["| " + " | ".join(row) + " |" for row in b.rows]
            out.append("")
        else:
            out += [f"![{b.alt}](figures/{b.name}.png)", ""]
    return "\n".join(out)


def to_html(blocks: list[Block], title: str) -> str:
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h2>{html.escape(b.text)}</h2>")
        elif isinstance(b, Para):
            body.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:
            data = base64.b64encode(b.png).decode()
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.alt)}"></figure>')
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:4px 10px}"
        "td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}th{background:#f6f8fa}"
        "img{max-width:100%}figure{margin:1em 0}"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head>\n<body><h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_confusions(cms: dict[str, np.ndarray]) -> bytes:
    fig, axes = plt.subplots(1, len(cms), figsize=(7.5 * len(cms), 6.5))
    for ax, (name, cm) in zip(np.atleast_1d(axes), cms.items(), strict=True):
        ax.imshow(cm, cmap="Blues")
        for (a, p), n in np.ndenumerate(cm):
            ax.text(p, a, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > cm.max() / 2 else "black")  # fmt: skip
        ax.set(title=f"{MODELS[name]} confusion matrix", xlabel="predicted", ylabel="actual",
               xticks=range(10), yticks=range(10))  # fmt: skip
        ax.set_xticklabels(CLASS_NAMES, rotation=45, ha="right")
        ax.set_yticklabels(CLASS_NAMES)
    return _png(fig)


def plot_learning_curves(histories: dict[str, dict[str, np.ndarray]]) -> bytes:
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for (name, h), color in zip(histories.items(), ("tab:orange", "tab:blue"), strict=False):
        acc_ax.plot(h["epoch"], h["accuracy"], "--", color=color, label=f"{MODELS[name]} train")
        acc_ax.plot(h["epoch"], h["val_accuracy"], "-", color=color, label=f"{MODELS[name]} validation")
        loss_ax.plot(h["epoch"], h["loss"], "--", color=color, label=f"{MODELS[name]} train")
        loss_ax.plot(h["epoch"], h["val_loss"], "-", color=color, label=f"{MODELS[name]} validation")
    acc_ax.set(title="Accuracy", xlabel="epoch")
    loss_ax.set(title="Loss (cross-entropy)", xlabel="epoch")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


def plot_accuracy_vs_time(histories: dict[str, dict[str, np.ndarray]]) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, h in histories.items():
        ax.plot(np.cumsum(h["seconds"]), h["val_accuracy"], "o-", label=MODELS[name])
    ax.set(title="Validation accuracy vs training time", xlabel="training seconds (cumulative)",
           ylabel="validation accuracy")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_predictions(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, title: str) -> bytes:
    """Each image with its predicted class and probability: green when right; when wrong, red
    with the true class beside it (seed 003)."""
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, label, p in zip(axes.flat, images, labels, probs, strict=False):
        pred = int(p.argmax())
        ax.imshow(img, cmap="gray_r")
        text = f"{CLASS_NAMES[pred]} {p[pred]:.0%}"
        if pred != label:
            text += f"\n(true: {CLASS_NAMES[label]})"
        ax.set_title(text, fontsize=8, color=RIGHT if pred == label else WRONG)
    fig.suptitle(title)
    return _png(fig)


def _read_history(name: str) -> dict[str, np.ndarray]:
    """DVCLive's per-epoch TSVs of `train-<name>` as arrays, with `epoch` = DVCLive's step + 1."""
    history = {}
    for metric in paths.HISTORY_METRICS:
        with paths.history_file(name, metric).open(newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if "epoch" not in history:  # every metric's TSV has the same steps
            history["epoch"] = np.array([int(r["step"]) + 1 for r in rows])
        history[metric] = np.array([float(r[metric]) for r in rows])
    return history


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


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
    names = list(MODELS)
    blocks: list[Block] = [
        Heading("MLP vs CNN"),
        Table(
            ["", *(MODELS[n] for n in names)],
            [
                ["test accuracy", *(_pct(evaluation[n]["accuracy"]) for n in names)],
                ["test loss", *(f"{evaluation[n]['loss']:.4f}" for n in names)],
                ["test macro F1", *(f"{evaluation[n]['macro_f1']:.4f}" for n in names)],
                ["validation accuracy", *(_pct(training[n]["val_accuracy"]) for n in names)],
                ["parameters", *(f"{training[n]['params']:,}" for n in names)],
                ["epochs (kept / run)", *(f"{training[n]['best_epoch']} / {training[n]['epochs_run']}" for n in names)],
                ["training time", *(f"{training[n]['train_seconds']:.0f} s" for n in names)],
            ],
        ),
        Heading("Per class (test set)"),
        Table(
            ["class", *(f"{MODELS[n]} {m}" for n in names for m in ("precision", "recall", "F1"))],
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
    blocks.append(Figure("confusion", "confusion matrices of both models", plot_confusions(cms)))
    blocks.append(Heading("Most-confused class pairs"))
    blocks.append(
        Table(
            ["model", "actual", "predicted as", "images"],
            [[MODELS[n], a, b, str(c)] for n in names for a, b, c in most_confused(cms[n], p["top_confusions"])],
        )
    )
    blocks += [
        Heading("Learning curves"),
        Figure(
            "learning_curves", "training and validation accuracy and loss per epoch", plot_learning_curves(histories)
        ),
        Heading("Accuracy vs training time"),
        Para(
            "Validation accuracy after each epoch against the training seconds spent so far: "
            "where a curve flattens, more epochs buy little."
        ),  # fmt: skip
        Figure(
            "accuracy_vs_time", "validation accuracy against cumulative training time", plot_accuracy_vs_time(histories)
        ),
        Heading("Predictions on test images"),
        Para("Green: predicted class and its probability, right. Red: wrong, with the true class below."),
    ]
    pick = np.sort(
        np.random.default_rng(p["seed"]).choice(labels.size, min(p["grid_size"], labels.size), replace=False)
    )
    for n in names:
        png = plot_predictions(images[pick], labels[pick], probs[n][pick], f"{MODELS[n]} predictions")
        blocks.append(Figure(f"predictions_{n}", f"{MODELS[n]} predictions on test images", png))
    return blocks


def main() -> None:
    p = params.load("report", ReportParams)
    evaluation = read_json(paths.METRICS / "evaluate.json")
    training = {n: read_json(paths.training_metrics_file(n)) for n in MODELS}
    histories = {n: _read_history(n) for n in MODELS}
    probs = dict(zip(MODELS, load_arrays(paths.PREDICTIONS, tuple(f"probs_{n}" for n in MODELS)), strict=True))
    images, labels = load_arrays(paths.TEST)
    blocks = build_report(p, evaluation, training, histories, probs, images, labels)
    title = "Fashion-MNIST: MLP vs CNN"
    for b in blocks:
        if isinstance(b, Figure):
            write_bytes(paths.REPORTS / "figures" / f"{b.name}.png", b.png)
    write_text(paths.REPORTS / "report.md", to_markdown(blocks, title))
    write_text(paths.REPORTS / "report.html", to_html(blocks, title))
    log.info("report: %s and %s", paths.REPORTS / "report.md", paths.REPORTS / "report.html")


if __name__ == "__main__":
    run_main(main)
