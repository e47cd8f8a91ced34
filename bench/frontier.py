"""The accuracy/time frontier: train configurations on the train split, score them on the
validation split, and append one JSON line per run to bench/frontier.jsonl.

    python bench/frontier.py cnn 'filters=[32,64,128]' 'convs_per_block=[1,2,2]' epochs=15 [--name NAME]

Each `key=value` (YAML values) overrides the model's section of params.yaml. The test split is
never read here: choosing defaults is tuning, and tuning uses the validation split only.
Records both wall seconds and CPU seconds of training: on this shared virtual machine the host
sometimes takes a core away, which moves wall time but not CPU time. `--table` renders the
recorded runs as the Markdown table and plot that bench/RESULTS.md shows.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import yaml

from stages.evaluate import predict
from stages.lib import params, paths
from stages.lib.files import load_arrays
from stages.lib.images import TTA
from stages.lib.tf_runtime import cpu_has_bfloat16
from stages.lib.training import summarize, train
from stages.train_cnn import CNNParams, build_cnn, whiten_patches
from stages.train_mlp import MLPParams, build_mlp

log = logging.getLogger("bench.frontier")
MODELS = {"mlp": (build_mlp, MLPParams), "cnn": (build_cnn, CNNParams)}
ADAPT = {"cnn": whiten_patches}  # what a new model takes from the training images (train(adapt=...))
RECORD = Path(__file__).with_name("frontier.jsonl")
PLOT = Path(__file__).with_name("frontier.png")


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU as `lscpu` would name it, with its family and model numbers (a cloud's "AMD EPYC"
    covers several generations) and whether it has bfloat16 instructions."""
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    bf16 = ", bf16" if cpu_has_bfloat16(cpuinfo) else ""
    family, model = fields.get("cpu family", "?"), fields.get("model", "?")
    return f"{fields.get('model name', '?')} (family {family} model {model}{bf16})"


def run(model: str, overrides: list[str], name: str) -> dict:
    build, schema = MODELS[model]
    section = params.read()[f"train_{model}"]
    for override in overrides:
        key, _, value = override.partition("=")
        section[key] = yaml.safe_load(value)
    p = params.validate(f"train_{model}", section, schema)
    train_split, val_split = load_arrays(paths.TRAIN), load_arrays(paths.VAL)
    cpu = time.process_time()
    trained, history = train(build, train_split, val_split, p, adapt=ADAPT.get(model))
    cpu_seconds = time.process_time() - cpu
    summary = summarize(trained, history)
    # Test-time augmentation, scored on the validation split (choosing it is tuning too).
    x_val, y_val = val_split
    tta = {mode: round(float((predict(trained, x_val, mode, 1000)[0].argmax(axis=1) == y_val).mean()), 6)
           for mode in TTA}  # fmt: skip
    row = {"model": model, "name": name, "overrides": overrides, **summary, "val_accuracy_tta": tta,
           "cpu_seconds": round(cpu_seconds, 1), "train_images": len(train_split[1]), "cpu": cpu_name()}  # fmt: skip
    with RECORD.open("a") as out:
        out.write(json.dumps(row) + "\n")
    log.info("%s", json.dumps(row))
    return row


# The fast-training recipe's levers (airbench, Page's ResNet-9), as a run's overrides name them.
LEVERS = {
    "augment_flip=alternate": "alternating flips", "augment_flip=random": "random flips",
    "augment_flip=true": "random flips", "augment_translate": "translations", "ema": "weight EMA",
    "label_smoothing": "label smoothing", "batch_size": "larger batches", "precision=mixed_bfloat16": "bfloat16",
    "optimizer=nesterov": "Nesterov SGD", "lr_schedule=triangular": "triangular schedule", "warmup": "warm-up",
    "bn_momentum": "fast BN statistics", "stem=patches": "patches stem", "stem=whitened_patches": "whitened stem",
    "conv_dropout": "less dropout", "dense_dropout": "less dropout",
}  # fmt: skip

# Test accuracies to hold the CNN's frontier against, drawn as lines: Zalando's benchmark table's
# small CNNs, and this project's defaults of round 2, before round 3 and since (their committed test
# accuracy).
ANCHORS = {
    "Zalando: 2 conv, <100k params": 0.925, "Zalando: 2 conv + 3 FC": 0.932, "Zalando: CapsNet": 0.936,
    "round 2's default (a58c034)": 0.9383, "the default before round 3 (ecd1cf2)": 0.9245,
    "round 3's default": 0.935,
}  # fmt: skip


def levers(overrides: list[str]) -> str:
    found = [name for key, name in LEVERS.items() for o in overrides if o.startswith(key) and not o.endswith("=0.0")]
    return ", ".join(dict.fromkeys(found)) or "-"


# Rows recorded before the CPU was: the first session's 2-vCPU AMD EPYC.
UNRECORDED_CPU = "AMD EPYC (family not recorded)"


def table() -> str:
    """Every recorded run, per model and CPU, cheapest first, as Markdown; draws bench/frontier.png.

    Ordered and plotted by CPU seconds: the runs shared the machine with other work at times,
    which stretches wall time but not CPU time (on an idle 2-core machine wall ~ CPU / 1.7).
    CPU seconds compare within one CPU only: the sessions' CPUs differ up to 1.8x per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"cpu": UNRECORDED_CPU, **json.loads(line)} for line in RECORD.read_text().splitlines() if line.strip()]
    cpus = list(dict.fromkeys(r["cpu"] for r in rows))  # in order of first appearance: A, B, ...
    label = {cpu: chr(ord("A") + i) for i, cpu in enumerate(cpus)}
    lines = ["| # | model | CPU | configuration (over params.yaml) | levers | params | epochs kept/run | train s "
             "| CPU s | val acc | with flip TTA |", "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, model in zip(axes, MODELS, strict=True):
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: (label[r["cpu"]], r["cpu_seconds"]))
        for number, r in enumerate(mine, start=len(lines) - 1):
            flip_tta = r.get("val_accuracy_tta", {}).get("flip")
            lines.append(
                f"| {number} | {model} | {label[r['cpu']]} | {r['name']}: `{' '.join(r['overrides']) or 'defaults'}` | "
                f"{levers(r['overrides'])} | {r['params']:,} | {r['best_epoch']}/{r['epochs_run']} | "
                f"{r['train_seconds']:.0f} | {r['cpu_seconds']:.0f} | {r['val_accuracy']:.4f} | "
                f"{'' if flip_tta is None else f'{flip_tta:.4f}'} |"
            )
            axis.scatter(r["cpu_seconds"], r["val_accuracy"], color=f"C{cpus.index(r['cpu'])}")
            axis.annotate(str(number), (r["cpu_seconds"], r["val_accuracy"]), fontsize=8,
                          xytext=(4, 2), textcoords="offset points")  # fmt: skip
        if model == "cnn":
            for number, (anchor, accuracy) in enumerate(ANCHORS.items()):
                axis.axhline(accuracy, color="grey", linestyle=(0, (2 + number, 2)), linewidth=0.8)
                # Neighbouring anchors' labels on opposite sides, so that none overprints another.
                side = sorted(ANCHORS.values()).index(accuracy) % 2
                axis.annotate(f"{anchor} (test {accuracy:.3f})", (1.0 - side, accuracy),
                              xycoords=("axes fraction", "data"), ha=("right", "left")[side], va="bottom",
                              fontsize=6.5, color="dimgrey")  # fmt: skip
        axis.set(title=f"{model.upper()} (point labels: table rows)",
                 xlabel="training CPU seconds (2 cores)", ylabel="validation accuracy")  # fmt: skip
        axis.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=f"C{i}") for i in range(len(cpus))]
    figure.legend(handles, [f"CPU {label[c]}: {c}" for c in cpus], loc="lower center", ncol=2, fontsize=8)
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(PLOT, dpi=110)
    lines.append("")
    lines.extend(f"CPU {label[cpu]}: {cpu}." for cpu in cpus)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", choices=sorted(MODELS))
    parser.add_argument("overrides", nargs="*", help="key=value over the model's params.yaml section")
    parser.add_argument("--name", help="a short label for the table and plot")
    parser.add_argument("--table", action="store_true", help="print the recorded runs as Markdown and draw the plot")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    if args.table:
        log.info("%s", table())
    else:
        run(args.model, args.overrides, args.name or " ".join(args.overrides) or "defaults")


if __name__ == "__main__":
    main()
