"""Every file the pipeline reads or writes, relative to the project root, and the models' names."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
PIPELINE = ROOT / "dvc.yaml"

RAW = ROOT / "data" / "raw"
PROCESSED = ROOT / "data" / "processed"
TRAIN = PROCESSED / "train.npz"
VAL = PROCESSED / "val.npz"
TEST = PROCESSED / "test.npz"
STATS = PROCESSED / "stats.json"
PREDICTIONS = ROOT / "data" / "predictions" / "test.npz"  # each model's test-set probabilities

MODELS_DIR = ROOT / "models"
METRICS_DIR = ROOT / "metrics"
EVALUATION = METRICS_DIR / "evaluate.json"
PLOTS_DIR = ROOT / "plots"
REPORTS_DIR = ROOT / "reports"
# Outside DVC's outs: per-epoch state of unfinished training runs (removed when a stage completes),
# and the uncached outputs each stage's last successful run left (stages/lib/last_run.py).
CHECKPOINTS_DIR = ROOT / "checkpoints"

# The trained models, each by its stage train-<name>, in the order every table and figure shows them.
MODELS = ("mlp", "cnn")


def training_stage(name: str) -> str:
    """`train-<name>`: the dvc.yaml stage (and the Prefect task) that trains the model `name`."""
    return f"train-{name}"


def training_section(name: str) -> str:
    """`train_<name>`: the params.yaml section of `train-<name>`, its module and its DVCLive directory."""
    return f"train_{name}"


def model_file(name: str) -> Path:
    """`models/<name>.keras`, written by `train-<name>`."""
    return MODELS_DIR / f"{name}.keras"


def predictions_key(name: str) -> str:
    """The array in PREDICTIONS of `name`'s probabilities, one row per test image."""
    return f"probs_{name}"


def live_dir(name: str) -> Path:
    """DVCLive's directory of `train-<name>`: metrics.json and plots/metrics/<metric>.tsv."""
    return ROOT / "dvclive" / training_section(name)


def training_metrics_file(name: str) -> Path:
    """The summary of `train-<name>` (DVCLive's metrics.json): live per epoch, final at the end."""
    return live_dir(name) / "metrics.json"


# What train-<name> logs per epoch to DVCLive, one TSV each (history_file).
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def history_file(name: str, metric: str) -> Path:
    """One metric of `train-<name>` per epoch (DVCLive's TSV: step, value). Their directory is a
    cached output (DVC's run-cache skips a stage with an uncached plain output), no plot itself."""
    return live_dir(name) / "plots" / "metrics" / f"{metric}.tsv"


# The learning curves `dvc plots show` draws, one plot a metric, each with every model's training
# and validation curves (report writes them from the TSVs above; curve_file).
CURVES = ("accuracy", "loss")


def curve_file(metric: str) -> Path:
    """One row per model, split and epoch (epoch, series, value): a DVC plot, in git."""
    return PLOTS_DIR / "report" / f"{metric}.csv"


def confusion_file(name: str) -> Path:
    """One row per test image (actual, predicted class names), for DVC's confusion template."""
    return PLOTS_DIR / "evaluate" / f"{name}_confusion.csv"


def in_checkout(path: Path, root: Path) -> Path:
    """One of the paths above, in the checkout `root` instead of this one (a clone, a worker's copy)."""
    return root / path.relative_to(ROOT)
