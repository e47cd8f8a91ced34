"""evaluate: the only stage that reads the test split; scores both models on it."""

from __future__ import annotations

import logging

import numpy as np

from stages.lib import params, paths
from stages.lib.files import json_text, load_arrays, npz_bytes, write_all
from stages.lib.images import tta_views
from stages.lib.modelfile import load_model
from stages.lib.scoring import confusion_csv, score, softmax
from stages.lib.sections.evaluate import EvaluateParams
from stages.lib.stage import run_main
from stages.lib.tf_runtime import keras

log = logging.getLogger("stages.evaluate")


def predict(model: keras.Model, images: np.ndarray, tta: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of `images`: from the average of the views' logits, and from the image alone."""
    views = tta_views(images, tta)
    logits = [model.predict(view, batch_size=batch_size, verbose=0).astype(np.float64) for view in views]
    return softmax(np.mean(logits, axis=0)), softmax(logits[0])


def main() -> None:
    p = params.load("evaluate", EvaluateParams)
    x_test, y_test = load_arrays(paths.TEST)
    metrics, probs = {}, {}
    for name in paths.MODELS:
        model = load_model(paths.model_file(name))
        augmented, single = predict(model, x_test, p[f"tta_{name}"], p["batch_size"])
        probs[name] = augmented.astype(np.float32)
        metrics[name] = score(y_test, probs[name])
        # Both ways, so that what test-time augmentation adds stays visible in `dvc metrics diff`.
        metrics[name]["accuracy_single_view"] = round(float((single.argmax(axis=1) == y_test).mean()), 6)
        log.info("%s: test accuracy %.4f (%s; %.4f from the image alone), loss %.4f, macro F1 %.4f",
                 name, metrics[name]["accuracy"], p[f"tta_{name}"], metrics[name]["accuracy_single_view"],
                 metrics[name]["loss"], metrics[name]["macro_f1"])  # fmt: skip
    # Only now that both models are scored, and all at once: never the MLP's new files beside
    # the CNN's old ones.
    write_all({
        **{paths.confusion_file(n): confusion_csv(y_test, probs[n].argmax(axis=1)).encode() for n in paths.MODELS},
        paths.PREDICTIONS: npz_bytes(**{paths.predictions_key(n): probs[n] for n in paths.MODELS}),
        paths.EVALUATION: json_text(metrics).encode(),
    })  # fmt: skip


if __name__ == "__main__":
    run_main(main)
