"""evaluate: the only stage that reads the test split; scores both models on it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stages import params, paths
from stages.io import StageError, display_path, json_text, load_arrays, npz_bytes, run_main, write_all
from stages.metrics import confusion_csv, score, softmax
from stages.tf_runtime import keras

log = logging.getLogger("stages.evaluate")

MODELS = ("mlp", "cnn")


class EvaluateParams(params.Section):
    batch_size: params.integer(1, 65536)
    """Test images per forward pass."""


def load_model(path: Path) -> keras.Model:
    """Load a trained model safely (no arbitrary code), or say how to rebuild it."""
    stage = f"train-{path.stem}"
    if not path.exists():
        raise StageError(f"{display_path(path)} is missing: run `dvc repro {stage}`")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise StageError(
            f"{display_path(path)} cannot be loaded ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            f"restore it with `dvc checkout --force {display_path(path)}` or retrain with `dvc repro -f {stage}`"
        ) from None


def main() -> None:
    p = params.load("evaluate", EvaluateParams)
    x_test, y_test = load_arrays(paths.TEST)
    metrics, probs = {}, {}
    for name in MODELS:
        model = load_model(paths.model_file(name))
        logits = model.predict(x_test, batch_size=p["batch_size"], verbose=0)
        probs[name] = softmax(logits.astype(np.float64)).astype(np.float32)
        metrics[name] = score(y_test, probs[name])
        log.info("%s: test accuracy %.4f, loss %.4f, macro F1 %.4f",
                 name, metrics[name]["accuracy"], metrics[name]["loss"], metrics[name]["macro_f1"])  # fmt: skip
    # Only now that both models are scored, and all at once: never the MLP's new files beside
    # the CNN's old ones.
    write_all({
        **{paths.confusion_file(n): confusion_csv(y_test, probs[n].argmax(axis=1)).encode() for n in MODELS},
        paths.PREDICTIONS: npz_bytes(**{f"probs_{name}": probs[name] for name in MODELS}),
        paths.METRICS / "evaluate.json": json_text(metrics).encode(),
    })  # fmt: skip


if __name__ == "__main__":
    run_main(main)
