"""A search's pictures, drawn by Optuna from a real study in memory: four PNGs beside the CSV, and the
pictures a study cannot show yet skipped with one log line each."""

from __future__ import annotations

import base64
import io
import logging
import re

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from flows.sweep import pictures

PNG = b"\x89PNG\r\n\x1a\n"
KEYS = ["train_cnn.learning_rate", "train_cnn.dense_units"]
DISTRIBUTIONS = {KEYS[0]: FloatDistribution(1e-4, 1e-1, log=True), KEYS[1]: CategoricalDistribution(["16", "32"])}
logger = logging.getLogger("test-pictures")


def a_search() -> optuna.Study:
    """Eight trials that report a validation accuracy per epoch to the median pruner, as a sweep's do."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float(KEYS[0], 1e-4, 1e-1, log=True)
        units = int(trial.suggest_categorical(KEYS[1], ["16", "32"]))
        for epoch in range(1, 5):
            accuracy = 0.9 - abs(rate - 0.01) * 4 - 0.1 / epoch + units / 1000
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned
        return accuracy

    study.optimize(objective, n_trials=8)
    return study


def test_a_searchs_four_pictures_are_pngs_beside_the_csv_and_in_one_markdown(tmp_path, caplog):
    study = a_search()
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and states.count(TrialState.COMPLETE) >= 2  # what the pictures show
    with caplog.at_level(logging.INFO, logger=logger.name):
        drawn = pictures.draw(study, KEYS, "cnn_val_accuracy", logger)
    assert [r for r in caplog.records if r.name == logger.name] == []  # nothing skipped
    files = pictures.save(drawn, tmp_path / "board.csv")
    assert {name: path.name for name, path in files.items()} == {
        "optimization-history": "board-optimization-history.png",
        "intermediate-values": "board-intermediate-values.png",
        "parallel-coordinate": "board-parallel-coordinate.png",
        "param-importances": "board-param-importances.png",
    }
    for path in files.values():
        assert path.parent == tmp_path and path.read_bytes().startswith(PNG)
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 400 and image.height >= 300
    embedded = re.findall(r"!\[([a-z-]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", pictures.markdown(drawn, files))
    assert {name: base64.b64decode(data) for name, data in embedded} == drawn


ONE_POINT = {KEYS[1]: CategoricalDistribution(["16"])}


@pytest.mark.parametrize(
    ("trials", "shown"),
    [
        ([], set()),  # nothing finished yet
        ([create_trial(value=0.8, params={KEYS[1]: "16"}, distributions=ONE_POINT)], {"optimization-history"}),
        ([create_trial(state=TrialState.PRUNED, params={KEYS[0]: 0.001 * i, KEYS[1]: "16"},
                       distributions=DISTRIBUTIONS, intermediate_values={1: 0.5}) for i in (1, 2, 3)],
         {"intermediate-values"}),  # all pruned
        ([create_trial(value=0.8, params={KEYS[0]: 0.001, KEYS[1]: u}, distributions=DISTRIBUTIONS)
          for u in ("16", "32")], {"optimization-history", "parallel-coordinate"}),  # one score twice
        ([create_trial(value=v, params={KEYS[0]: 0.001, KEYS[1]: "16"}, distributions=DISTRIBUTIONS)
          for v in (0.7, 0.8)], {"optimization-history"}),  # a grid whose points differ in nothing searched
    ],
)  # fmt: skip
def test_a_picture_the_study_cannot_show_is_skipped_with_one_log_line(trials, shown, caplog):
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    with caplog.at_level(logging.INFO, logger=logger.name):
        drawn = pictures.draw(study, KEYS, "cnn_val_accuracy", logger)
    assert set(drawn) == shown
    skipped = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert len(skipped) == 4 - len(shown)
    assert all(re.fullmatch(r"no [a-z ]+ picture: [^\n]+", line) for line in skipped), skipped
    assert all(Image.open(io.BytesIO(png)).format == "PNG" for png in drawn.values())
