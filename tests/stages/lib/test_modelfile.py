"""The .keras file: the same bytes for the same model in every process, and a clear error when damaged."""

import numpy as np
import pytest

from stages.lib.modelfile import load_model
from stages.lib.stage import StageError
from stages.train_cnn import build_cnn
from tests.stages.tiny import CNN

SAVE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
import keras
from stages.lib.modelfile import save_model
from stages.train_cnn import build_cnn
keras.utils.set_random_seed(3)
save_model(build_cnn({cnn}), Path(sys.argv[1]))
"""


@pytest.mark.slow  # processes of their own, each starting TensorFlow
def test_a_saved_model_has_the_same_bytes_in_every_process(tmp_path):
    """Keras writes the save time and memory addresses into a .keras file; save_model does not,
    so equal trainings on two machines are one DVC object (and one run-cache match)."""
    import subprocess
    import sys

    import keras

    paths = [tmp_path / f"{i}" / "cnn.keras" for i in (1, 2)]
    for path in paths:
        subprocess.run([sys.executable, "-c", SAVE_IN_A_NEW_PROCESS.format(cnn=CNN), str(path)], check=True)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert [p.name for p in paths[0].parent.iterdir()] == ["cnn.keras"]  # no scratch left behind
    keras.utils.set_random_seed(3)
    built = build_cnn(CNN)
    loaded = keras.models.load_model(paths[0], safe_mode=True)
    x = np.random.default_rng(0).normal(size=(2, 28, 28)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), built.predict(x, verbose=0))


def test_damaged_model_gets_a_rebuild_hint(tmp_path):
    path = tmp_path / "cnn.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(StageError, match=r"cnn.keras cannot be loaded .*dvc repro -f train-cnn"):
        load_model(path)
    with pytest.raises(StageError, match=r"mlp.keras is missing: run `dvc repro train-mlp`"):
        load_model(tmp_path / "mlp.keras")
