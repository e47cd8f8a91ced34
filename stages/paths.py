"""Every file the pipeline reads or writes, relative to the project root."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"

RAW = ROOT / "data" / "raw"
PROCESSED = ROOT / "data" / "processed"
TRAIN = PROCESSED / "train.npz"
VAL = PROCESSED / "val.npz"
TEST = PROCESSED / "test.npz"
STATS = PROCESSED / "stats.json"
PREDICTIONS = ROOT / "data" / "predictions" / "test.npz"

MODELS = ROOT / "models"
METRICS = ROOT / "metrics"
PLOTS = ROOT / "plots"
REPORTS = ROOT / "reports"
# Per-epoch state of unfinished training runs: outside DVC's outs, removed when a stage completes.
CHECKPOINTS = ROOT / "checkpoints"


def model_file(name: str) -> Path:
    """`models/<name>.keras`, written by `train-<name>`."""
    return MODELS / f"{name}.keras"


def history_file(name: str) -> Path:
    """Per-epoch history of `train-<name>`, a DVC plot."""
    return PLOTS / f"train_{name}" / "history.csv"


def training_metrics_file(name: str) -> Path:
    return METRICS / f"train_{name}.json"


def confusion_file(name: str) -> Path:
    """One row per test image (actual, predicted class names), for DVC's confusion template."""
    return PLOTS / "evaluate" / f"{name}_confusion.csv"
