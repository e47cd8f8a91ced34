"""Kill train-cnn mid-run: nothing looks finished, and the next `dvc repro` resumes, to the accuracy
of an uninterrupted run."""

import json
import os
import signal
import subprocess

import pytest

from tests.helpers import tool_env

pytestmark = pytest.mark.slow(minutes=10)

EPOCHS = 6
# Half the default conv widths on the tiny data: about a second an epoch on a 2-vCPU machine
# (Zen 4; the slowest kind takes twice that), so the run still has seconds to go when the test,
# reading its output, sends the signal after epoch 2 (the tiny widths finish all epochs in a
# second, which a busy machine can outrun). The default widths take twice the CPU for nothing more.
SLOW_ENOUGH = {"epochs": EPOCHS, "patience": EPOCHS, "filters": [16, 32], "dense_units": 64}


def _as_in_a_terminal() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that: a test
    # suite started with `&` would otherwise test a Ctrl-C that cannot arrive.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_kill_after_epoch_2(project, sig: signal.Signals) -> str:
    proc = subprocess.Popen(
        ["dvc", "repro", "train-cnn"], cwd=project.root, env=tool_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=_as_in_a_terminal,
    )  # fmt: skip
    output = []
    for line in proc.stdout:
        output.append(line)
        if "checkpoint saved after epoch 2" in line:
            assert proc.poll() is None, "the run ended before the test could interrupt it"
            os.killpg(proc.pid, sig)
            break
    output.append(proc.stdout.read())
    proc.wait(60)
    assert proc.returncode != 0, "".join(output)
    return "".join(output)


# SIGKILL, which nothing can catch; Ctrl-C and SIGTERM reach the stages through tests/flows/cli/test_supervision.py.
@pytest.mark.parametrize("sig", [signal.SIGKILL], ids=lambda s: s.name)
def test_killed_training_leaves_nothing_finished_and_resumes(project, sig):
    project.set_params(train_cnn=SLOW_ENOUGH)
    _start_and_kill_after_epoch_2(project, sig)

    root = project.root
    assert not (root / "models/cnn.keras").exists()
    assert not [p.name for p in (root / "models").iterdir() if ".tmp" in p.name]  # no temp litter
    state = json.loads((root / "checkpoints/train_cnn/state.json").read_text())
    assert 2 <= state["epoch"] < EPOCHS
    assert "train-cnn" in project.run("dvc", "status").stdout  # dvc.lock does not claim it finished
    live = json.loads((root / "dvclive/train_cnn/metrics.json").read_text())
    assert live["step"] == state["epoch"] - 1 and "best_epoch" not in live  # DVCLive's last epoch, unfinished

    proc = project.run("dvc", "repro", "train-cnn")
    out = proc.stdout + proc.stderr
    assert f"resuming after epoch {state['epoch']}" in out
    # DVCLive's step goes on from where the killed run stopped: one row per epoch, none twice.
    history = (root / "dvclive/train_cnn/plots/metrics/val_accuracy.tsv").read_text().splitlines()
    assert history[0] == "step\tval_accuracy"
    assert [int(row.split("\t")[0]) for row in history[1:]] == list(range(EPOCHS))
    assert json.loads((root / "dvclive/train_cnn/metrics.json").read_text())["step"] == EPOCHS - 1
    assert not (root / "checkpoints/train_cnn").exists()
    assert "up to date" in project.run("dvc", "status", "train-cnn").stdout
    if sig == signal.SIGKILL:  # the resumed run reaches the accuracy of an uninterrupted one
        resumed = json.loads((root / "dvclive/train_cnn/metrics.json").read_text())["val_accuracy"]
        project.run("dvc", "repro", "--force", "train-cnn")
        uninterrupted = json.loads((root / "dvclive/train_cnn/metrics.json").read_text())["val_accuracy"]
        assert abs(resumed - uninterrupted) < 0.05, (resumed, uninterrupted)
