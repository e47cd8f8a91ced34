"""Kernel levers: the CNN's training images per CPU-second under each way of running the same
training, side by side in one run.

    python bench/kernels.py [--images 6400] [--rounds 3] [--only NAME ...] [--base KEY=VALUE ...]

Each variant trains params.yaml's train_cnn (with `--base` over it) on the first `--images`
training images the stage's way, in a process of its own (thread pools and op determinism are
fixed when TensorFlow starts), after one untimed pass; the variants take turns for `--rounds`
rounds and the medians are printed, with each variant's ratio to the first. Read images per
CPU-second: on a shared virtual machine the host takes a core away at times, which moves wall
time but not CPU time. Variants that change the model or the batch change what is learnt too;
whether that costs accuracy is the frontier's question (bench/frontier.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("bench.kernels")

# name: (what changes, overrides of train_cnn, environment, switches of this bench)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, str], dict[str, Any]]] = {
    "default": ("params.yaml's train_cnn", {}, {}, {}),
    "keras-bn": ("Keras's own (unfused) BatchNormalization", {}, {}, {"fused_bn": False}),
    "no-determinism": ("op determinism off", {}, {}, {"determinism": False}),
    "intra-1": ("one intra-op thread", {}, {"TF_NUM_INTRAOP_THREADS": "1"}, {}),
    "inter-1": ("one inter-op thread", {}, {"TF_NUM_INTEROP_THREADS": "1"}, {}),
    "batch-256": ("batches of 256, learning rate x2", {"batch_size": 256, "scale_lr": 2}, {}, {}),
    "batch-512": ("batches of 512, learning rate x4", {"batch_size": 512, "scale_lr": 4}, {}, {}),
    "patches": ("2x2 patches as 4 channels at 14x14 instead of conv + pool at 28x28", {"stem": "patches"}, {}, {}),
    "no-dropout": ("no dropout", {"conv_dropout": 0.0, "dense_dropout": 0.0}, {}, {}),
    "no-ema": ("no weight average", {"ema": 0.0}, {}, {}),
    "bfloat16": ("mixed_bfloat16", {"precision": "mixed_bfloat16"}, {}, {}),
}


def measure(overrides: dict[str, Any], switches: dict[str, Any], images: int) -> dict[str, float]:
    """In this process: images per CPU-second and per wall second of one timed pass."""
    from bench.mfu import images_per_cpu_second, trained_model
    from stages import train_cnn
    from stages.lib import params, paths
    from stages.lib.files import load_arrays
    from stages.lib.tf_runtime import keras, tf

    if not switches.get("determinism", True):  # seed_everything would switch it on
        tf.config.experimental.enable_op_determinism = lambda: None
    if not switches.get("fused_bn", True):
        train_cnn.batch_norm = lambda momentum: keras.layers.BatchNormalization(momentum=momentum)
    section = params.read()["train_cnn"]
    scale = overrides.pop("scale_lr", 1)
    p = params.validate("train_cnn", {**section, **overrides}, train_cnn.CNNParams)
    p["learning_rate"] *= scale
    x, y = load_arrays(paths.TRAIN)
    model, batches = trained_model(train_cnn.build_cnn, p, x[:images], y[:images])
    wall = time.perf_counter()
    rate = images_per_cpu_second(model, batches, images)
    return {"images_per_cpu_second": rate, "images_per_second": images / (time.perf_counter() - wall)}


def run_variant(name: str, base: dict[str, Any], images: int) -> dict[str, float]:
    _, overrides, environment, switches = VARIANTS[name]
    job = json.dumps({"overrides": {**base, **overrides}, "switches": switches, "images": images})
    done = subprocess.run([sys.executable, __file__, "--child", job], env={**os.environ, **environment},
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"variant {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6400, help="training images per timed pass")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every variant")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="these variants (the first is the base)")
    parser.add_argument("--base", nargs="*", default=[], help="KEY=VALUE (YAML) over train_cnn for every variant")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(measure(job["overrides"], job["switches"], job["images"])))  # noqa: T201 (to the parent)
        return
    import yaml

    from bench.frontier import cpu_name

    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    base = {key: yaml.safe_load(value) for key, _, value in (b.partition("=") for b in args.base)}
    names = args.only or list(VARIANTS)
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            rates[name].append(run_variant(name, base, args.images))
            log.info("round %d %-15s %.0f images per CPU-s", round_ + 1, name, rates[name][-1]["images_per_cpu_second"])
    log.info("\nCPU: %s; %s; %d images a pass, medians of %d rounds", cpu_name(), base or "params.yaml", args.images,
             args.rounds)  # fmt: skip
    log.info("| variant | what changes | images per CPU-s | ratio | images per s |\n|---|---|---:|---:|---:|")
    first = statistics.median(r["images_per_cpu_second"] for r in rates[names[0]])
    for name in names:
        cpu = statistics.median(r["images_per_cpu_second"] for r in rates[name])
        wall = statistics.median(r["images_per_second"] for r in rates[name])
        log.info("| %s | %s | %.0f | %.2fx | %.0f |", name, VARIANTS[name][0], cpu, cpu / first, wall)


if __name__ == "__main__":
    main()
