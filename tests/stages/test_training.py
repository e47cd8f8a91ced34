import json
from pathlib import Path

import numpy as np
import pytest

from stages.models import build_cnn, build_mlp
from stages.preprocess import normalize
from stages.training import HISTORY_COLUMNS, Checkpoint, TrainingLive, cpu_has_bfloat16, save_model, summarize, train
from tests.conftest import synthetic_split

COMMON = {
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 0.003,
    "seed": 7,
    "patience": 3,
    "lr_schedule": "constant",
    "augment_flip": False,
    "augment_shift": 0.0,
    "steps_per_execution": 4,  # 10 steps an epoch: two full calls and a partial one
    "label_smoothing": 0.0,
    "weight_decay": 0.0,
    "precision": "float32",
}
MLP = {**COMMON, "hidden_units": [32], "dropout": 0.1}
CNN = {**COMMON, "filters": [4, 8], "convs_per_block": 1, "kernel_size": 3, "batch_norm": True,
       "conv_dropout": 0.1, "dense_units": 16, "dense_dropout": 0.2}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_splits():
    x_train, y_train = synthetic_split(300, seed=1)
    x_val, y_val = synthetic_split(100, seed=2)
    x_train, (x_val,), _ = normalize(x_train, [x_val], "scale")
    return (x_train, y_train), (x_val, y_val)


@pytest.mark.parametrize(("build", "p"), [(build_mlp, MLP), (build_cnn, CNN)], ids=["mlp", "cnn"])
def test_models_map_images_to_ten_logits(build, p):
    model = build(p)
    assert model.output_shape == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "linear"


def _train_once(build, p, splits, checkpoint=None, live=None):
    return train(build, *splits, p, checkpoint=checkpoint, live=live)


AUGMENTED_CNN = {**CNN, "lr_schedule": "cosine", "augment_flip": True, "augment_shift": 0.1}
BFLOAT16_CNN = {**AUGMENTED_CNN, "precision": "mixed_bfloat16"}


@pytest.mark.parametrize(
    ("build", "p"),
    [(build_mlp, MLP), (build_cnn, CNN), (build_cnn, AUGMENTED_CNN), (build_cnn, BFLOAT16_CNN)],
    ids=["mlp", "cnn", "cnn-augmented-cosine", "cnn-mixed-bfloat16"],
)
def test_same_params_give_the_same_model(build, p, tiny_splits):
    model_a, history_a = _train_once(build, p, tiny_splits)
    model_b, history_b = _train_once(build, p, tiny_splits)
    for wa, wb in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(history_a) == strip(history_b)
    assert [row["epoch"] for row in history_a] == [1, 2]


def test_training_learns_the_synthetic_classes(tiny_splits):
    _, history = _train_once(build_mlp, {**MLP, "epochs": 5}, tiny_splits)
    assert history[-1]["val_accuracy"] > 0.5  # chance is 0.1


def test_early_stopping_keeps_the_best_epoch(tiny_splits):
    # A learning rate this large wrecks the model after the first epochs; patience 1 stops it.
    model, history = _train_once(build_mlp, {**MLP, "epochs": 30, "patience": 1, "learning_rate": 0.9}, tiny_splits)
    summary = summarize(model, history)
    assert summary["epochs_run"] < 30
    assert summary["val_accuracy"] == round(max(r["val_accuracy"] for r in history), 6)
    assert summary["params"] == model.count_params()


def test_an_empty_hidden_units_list_trains_a_softmax_regression(tiny_splits):
    model, history = _train_once(build_mlp, {**MLP, "hidden_units": [], "epochs": 4}, tiny_splits)
    assert [type(layer).__name__ for layer in model.layers] == ["Reshape", "Flatten", "Dense"]
    assert model.count_params() == 28 * 28 * 10 + 10
    assert history[-1]["val_accuracy"] > 0.5


def test_convs_per_block_may_differ_per_block_and_label_smoothing_with_weight_decay_train(tiny_splits):
    p = {**CNN, "convs_per_block": [1, 2], "label_smoothing": 0.1, "weight_decay": 0.01, "epochs": 3}
    model, history = _train_once(build_cnn, p, tiny_splits)
    assert [type(layer).__name__ for layer in model.layers].count("Conv2D") == 3
    assert type(model.optimizer).__name__ == "AdamW"
    assert history[-1]["val_accuracy"] > 0.3


def test_mixed_bfloat16_computes_in_bfloat16_with_float32_weights_and_logits(tiny_splits, tmp_path):
    import keras

    model, history = _train_once(build_cnn, {**BFLOAT16_CNN, "epochs": 3}, tiny_splits)
    assert history[-1]["val_accuracy"] > 0.3
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert {(layer.compute_dtype, layer.variable_dtype) for layer in convs} == {("bfloat16", "float32")}
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float32")}
    assert model.get_layer("logits").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the policy is the model's, not the process's
    # Saved and loaded, it computes as it was trained: same policy, same logits.
    save_model(model, tmp_path / "cnn.keras")
    loaded = keras.models.load_model(tmp_path / "cnn.keras", safe_mode=True)
    assert [layer.compute_dtype for layer in loaded.layers] == [layer.compute_dtype for layer in model.layers]
    x = tiny_splits[1][0][:8]
    logits = loaded.predict(x, verbose=0)
    assert logits.dtype == np.float32
    np.testing.assert_array_equal(logits, model.predict(x, verbose=0))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu sse2 avx512f avx512_bf16 avx512_vnni", True), ("fpu sse2 amx_bf16 amx_tile", True),
     ("fpu sse2 avx2 avx512f", False)],
)  # fmt: skip
def test_bfloat16_instructions_are_read_from_cpuinfo(flags, expected, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_bfloat16(cpuinfo) is expected
    assert cpu_has_bfloat16(tmp_path / "missing") is None


def _live_rows(directory, metric):
    lines = (directory / "plots" / "metrics" / f"{metric}.tsv").read_text().splitlines()
    assert lines[0] == f"step\t{metric}"
    return [(int(step), float(value)) for step, value in (line.split("\t") for line in lines[1:])]


class RecordingLive(TrainingLive):
    """DVCLive, noting its summary file each time a step ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def next_step(self):
        super().next_step()
        self.seen.append(json.loads(Path(self.metrics_file).read_text()))


def test_every_epoch_is_logged_to_dvclive_as_it_ends(tiny_splits, tmp_path):
    directory = tmp_path / "dvclive"
    live = RecordingLive(directory)
    _, history = _train_once(build_mlp, {**MLP, "epochs": 3}, tiny_splits, live=live)
    assert [summary["step"] for summary in live.seen] == [0, 1, 2]  # rewritten as each epoch ended
    assert live.seen[0]["val_accuracy"] == pytest.approx(history[0]["val_accuracy"], abs=1e-6)
    for metric in HISTORY_COLUMNS[1:]:
        rows = _live_rows(directory, metric)
        assert [step for step, _ in rows] == [0, 1, 2]
        assert [value for _, value in rows] == pytest.approx([row[metric] for row in history], abs=1e-6)
    assert not list(tmp_path.rglob("dvc.yaml"))  # dvc.yaml declares these files; DVCLive writes none


def test_a_resumed_run_continues_dvclives_steps(tiny_splits, tmp_path):
    p = {**MLP, "epochs": 4, "patience": 10}
    checkpoint, directory = tmp_path / "ckpt", tmp_path / "dvclive"
    live = TrainingLive(directory)
    _train_once(build_mlp, {**p, "epochs": 2}, tiny_splits, Checkpoint(checkpoint, "fp"), live=live)
    # The next run starts a fresh DVCLive directory (DVC removes a stage's outputs before it runs).
    live = TrainingLive(directory)
    _, history = _train_once(build_mlp, p, tiny_splits, Checkpoint(checkpoint, "fp"), live=live)
    assert [step for step, _ in _live_rows(directory, "val_accuracy")] == [0, 1, 2, 3]
    assert [v for _, v in _live_rows(directory, "val_accuracy")] == pytest.approx(
        [row["val_accuracy"] for row in history], abs=1e-6
    )


def test_a_checkpointed_run_resumes_where_it_stopped(tiny_splits, tmp_path):
    p = {**MLP, "epochs": 4, "patience": 10}
    directory = tmp_path / "ckpt"
    # A run that "dies" after two epochs: same params, epochs cut to 2, checkpoint kept.
    _train_once(build_mlp, {**p, "epochs": 2}, tiny_splits, Checkpoint(directory, "fp"))
    assert sorted(f.name for f in directory.iterdir()) == ["best-2.npz", "epoch-2.keras", "state.json"]
    model, history = _train_once(build_mlp, p, tiny_splits, Checkpoint(directory, "fp"))
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["val_accuracy"] > 0.5


def test_a_checkpoint_of_other_params_is_ignored(tiny_splits, tmp_path):
    directory = tmp_path / "ckpt"
    _train_once(build_mlp, {**MLP, "epochs": 1}, tiny_splits, Checkpoint(directory, "old"))
    _, history = _train_once(build_mlp, {**MLP, "epochs": 2}, tiny_splits, Checkpoint(directory, "new"))
    assert [row["epoch"] for row in history] == [1, 2]


SAVE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
import keras
from stages.models import build_cnn
from stages.training import save_model
keras.utils.set_random_seed(3)
save_model(build_cnn({cnn}), Path(sys.argv[1]))
"""


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
