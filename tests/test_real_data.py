"""Smoke test on the real 70,000 Fashion-MNIST images: fetch, preprocess, one MLP epoch, score."""

import pytest

from stages.fetch import fetch
from stages.lib import params
from stages.lib.idx import FASHION_MNIST, decode
from stages.lib.scoring import score, softmax
from stages.lib.training import train
from stages.preprocess import PreprocessParams, preprocess
from stages.train_mlp import MLPParams, build_mlp
from tests.helpers import require_real_data

pytestmark = pytest.mark.slow(minutes=2)


def test_one_mlp_epoch_on_the_real_data(tmp_path):
    source = require_real_data()
    raw_dir = tmp_path / "raw"
    fetch(FASHION_MNIST, [str(source)], raw_dir, timeout=5)  # verifies the published checksums
    raw = {spec.name.rsplit("-", 2)[0]: decode((raw_dir / spec.name).read_bytes()) for spec in FASHION_MNIST}
    assert raw["train-images"].shape == (60000, 28, 28) and raw["t10k-labels"].shape == (10000,)

    splits, stats = preprocess(params.load("preprocess", PreprocessParams), raw)
    assert stats["splits"]["train"]["count"] + stats["splits"]["val"]["count"] == 60000
    assert stats["splits"]["test"]["count"] == 10000

    p = {**params.load("train_mlp", MLPParams), "epochs": 1}
    model, history = train(build_mlp, splits["train"], splits["val"], p)
    assert history[0]["val_accuracy"] > 0.80

    x_test, y_test = splits["test"]
    accuracy = score(y_test, softmax(model.predict(x_test, batch_size=1000, verbose=0)))["accuracy"]
    assert accuracy > 0.80  # published one-epoch MLPs reach 0.82-0.85
