"""The pictures of the report: confusion matrices, learning curves, predictions; one colour per model."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages.lib.idx import CLASS_NAMES  # noqa: E402

MODEL_COLORS = {"mlp": "tab:orange", "cnn": "tab:blue"}  # in every figure
RIGHT, WRONG = "#1a7f37", "#cf222e"


def png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def plot_confusions(cms: dict[str, np.ndarray]) -> bytes:
    """One confusion matrix (actual rows, predicted columns) per title."""
    fig, axes = plt.subplots(1, len(cms), figsize=(7.5 * len(cms), 6.5))
    for ax, (title, cm) in zip(np.atleast_1d(axes), cms.items(), strict=True):
        ax.imshow(cm, cmap="Blues")
        for (a, p), n in np.ndenumerate(cm):
            ax.text(p, a, str(n), ha="center", va="center", fontsize=7,
                    color="white" if n > cm.max() / 2 else "black")  # fmt: skip
        ax.set(title=title, xlabel="predicted", ylabel="actual", xticks=range(10), yticks=range(10))
        ax.set_xticklabels(CLASS_NAMES, rotation=45, ha="right")
        ax.set_yticklabels(CLASS_NAMES)
    return png(fig)


def plot_learning_curves(histories: dict[str, dict[str, np.ndarray]]) -> bytes:
    """Accuracy and loss per epoch, training dashed and validation solid, a colour per model."""
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(12, 4))
    for name, h in histories.items():
        color = MODEL_COLORS[name]
        acc_ax.plot(h["epoch"], h["accuracy"], "--", color=color, label=f"{name.upper()} train")
        acc_ax.plot(h["epoch"], h["val_accuracy"], "-", color=color, label=f"{name.upper()} validation")
        loss_ax.plot(h["epoch"], h["loss"], "--", color=color, label=f"{name.upper()} train")
        loss_ax.plot(h["epoch"], h["val_loss"], "-", color=color, label=f"{name.upper()} validation")
    acc_ax.set(title="Accuracy", xlabel="epoch")
    loss_ax.set(title="Loss (cross-entropy)", xlabel="epoch")
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return png(fig)


def plot_accuracy_vs_time(histories: dict[str, dict[str, np.ndarray]]) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, h in histories.items():
        ax.plot(np.cumsum(h["seconds"]), h["val_accuracy"], "o-", color=MODEL_COLORS[name], label=name.upper())
    ax.set(title="Validation accuracy vs training time", xlabel="training seconds (cumulative)",
           ylabel="validation accuracy")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend()
    return png(fig)


def plot_predictions(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, title: str) -> bytes:
    """Each image with its predicted class and probability: green when right; when wrong, red
    with the true class beside it (as "The fashionable Hello World of deep learning" shows them)."""
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
    return png(fig)


def plot_changed_images(images: np.ndarray, labels: np.ndarray, answers: dict[str, np.ndarray], title: str) -> bytes:
    """Test images, each with its true class and every revision's answer (green right, red wrong)."""
    cols = min(8, max(1, len(images)))
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, (1.2 + 0.35 * len(answers)) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img, label) in enumerate(zip(axes.flat, images, labels, strict=False)):
        ax.imshow(img, cmap="gray_r")
        ax.set_title(f"{CLASS_NAMES[label]}", fontsize=8, fontweight="bold")
        for row, (name, predicted) in enumerate(answers.items()):
            ax.text(0.5, -0.08 - 0.16 * row, f"{name}: {CLASS_NAMES[predicted[i]]}", transform=ax.transAxes,
                    ha="center", va="top", fontsize=7, color=RIGHT if predicted[i] == label else WRONG)  # fmt: skip
    fig.suptitle(title)
    return png(fig)


def plot_revision_curves(histories: dict[str, dict[str, dict[str, np.ndarray]]]) -> bytes:
    """Validation accuracy per epoch of each model in each revision ({revision: {model: history}}):
    a colour per model, a line style per revision."""
    styles = ("--", "-", ":", "-.")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for style, (revision, models) in zip(styles, histories.items(), strict=False):
        for name, h in models.items():
            ax.plot(h["epoch"], h["val_accuracy"], style, marker="o", markersize=3, color=MODEL_COLORS[name],
                    label=f"{name.upper()}, {revision}")  # fmt: skip
    ax.set(title="Validation accuracy per epoch", xlabel="epoch", ylabel="validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    return png(fig)


def plot_confusion_differences(differences: dict[str, np.ndarray]) -> bytes:
    """One matrix of count differences (actual rows, predicted columns) per title: blue where the
    second revision has more images, red where it has fewer."""
    fig, axes = plt.subplots(1, len(differences), figsize=(7.5 * len(differences), 6.5))
    for ax, (title, diff) in zip(np.atleast_1d(axes), differences.items(), strict=True):
        bound = max(1, int(np.abs(diff).max()))
        ax.imshow(diff, cmap="RdBu", vmin=-bound, vmax=bound)
        for (a, p), n in np.ndenumerate(diff):
            if n:
                ax.text(p, a, f"{n:+d}", ha="center", va="center", fontsize=7)
        ax.set(title=title, xlabel="predicted", ylabel="actual", xticks=range(10), yticks=range(10))
        ax.set_xticklabels(CLASS_NAMES, rotation=45, ha="right")
        ax.set_yticklabels(CLASS_NAMES)
    return png(fig)
