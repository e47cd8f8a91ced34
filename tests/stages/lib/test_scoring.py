"""Scores from labels and probabilities: accuracy, loss, F1 per class, confusions."""

import numpy as np
import pytest

from stages.lib.scoring import confusion_csv, confusion_matrix, most_confused, score, softmax


def test_score_on_a_hand_checked_example():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]], dtype=np.float32)
    probs = np.pad(probs, ((0, 0), (0, 8)))  # ten classes, eight never used
    s = score(labels, probs)
    assert s["accuracy"] == 0.75
    assert (s["accuracy_ci_low"], s["accuracy_ci_high"]) == pytest.approx((0.3006, 0.9544), abs=1e-4)  # Wilson, 3 of 4
    assert s["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])), abs=1e-6)
    assert s["per_class"]["T-shirt/top"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3, abs=1e-6)}
    assert s["per_class"]["Trouser"]["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert s["per_class"]["Bag"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 10, abs=1e-6)


def test_confusion_matrix_rows_are_actual_and_pairs_are_ranked():
    actual = np.array([6, 6, 6, 0, 2])
    predicted = np.array([0, 0, 6, 6, 4])
    cm = confusion_matrix(actual, predicted)
    assert cm[6, 0] == 2 and cm[6, 6] == 1 and cm.sum() == 5
    assert most_confused(cm, 2) == [("Shirt", "T-shirt/top", 2), ("T-shirt/top", "Shirt", 1)]
    assert confusion_csv(actual[:2], predicted[:2]).splitlines() == ["actual,predicted"] + ["Shirt,T-shirt/top"] * 2


def test_softmax_is_stable_for_large_logits():
    p = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.5, 0.5]])
