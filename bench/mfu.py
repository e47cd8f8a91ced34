"""Where the CPU goes: each default model's FLOPs per image, the images and GFLOP it trains per
CPU-second, the CPU's FMA peak, the fraction of it reached, and a per-op profile of training steps.

    python bench/mfu.py [--images 6400] [--models cnn mlp] [--no-profile]

FLOPs are counted from the built Keras model: 2 x the multiply-adds of every Conv2D and Dense
layer (what MFU counts; batch norm, activations, pooling and the optimizer add elementwise work,
which the profile shows as time). A training step is forward + the gradient of the inputs +
the gradient of the weights, 3x the forward FLOPs, except the first weighted layer, whose input
gradient nobody needs (TensorFlow does not compute it): 2x.

The peak is two FMA pipes per core, each the width of the widest vector the CPU has (flags of
/proc/cpuinfo), at the clock /proc/cpuinfo reports (a virtual machine's nominal clock; turbo
raises the real one, so the fraction is an upper bound), on the cores this process may use.
AMD family 25 (Zen 3 and Zen 4) executes 512-bit vectors as two 256-bit halves: 256-bit pipes.
bfloat16: `avx512_bf16` doubles the FP32 rate (a pair of bfloat16 products per FP32 lane);
Intel's AMX does 1,024 FLOP per cycle per core (a 16x16x32 tile product every 16 cycles).

The profile: TensorFlow's profiler over the timed steps, each op's time on the executor's
threads, attributed to the layer that made it (its name scope) and to forward or backward
(`gradient_tape/`); the optimizer's update and the weight average by their scopes. Op times
are wall time on the threads that run them: they show shares, not CPU-seconds.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.frontier import MODELS, cpu_name  # noqa: E402
from stages.lib import params, paths  # noqa: E402
from stages.lib.dataset import TrainingInput  # noqa: E402
from stages.lib.files import load_arrays  # noqa: E402
from stages.lib.layers import with_precision  # noqa: E402
from stages.lib.tf_runtime import keras, seed_everything, tf  # noqa: E402
from stages.lib.training import compile_model  # noqa: E402

log = logging.getLogger("bench.mfu")
RECORD = Path(__file__).with_name("mfu.jsonl")


def forward_flops(model: keras.Model) -> dict[str, int]:
    """FLOPs of one image's forward pass per weighted layer (2 x multiply-adds), from the built model."""
    flops = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kernel_height, kernel_width, in_channels, _ = layer.kernel.shape
            flops[layer.name] = 2 * height * width * kernel_height * kernel_width * in_channels * out_channels
        elif isinstance(layer, keras.layers.Dense):
            in_units, out_units = layer.kernel.shape
            flops[layer.name] = 2 * in_units * out_units
    return flops


def training_flops(forward: dict[str, int]) -> int:
    """One image's training step: 3x the forward FLOPs, 2x for the first weighted layer."""
    first = next(iter(forward))
    return sum((2 if name == first else 3) * value for name, value in forward.items())


def peak(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU's FMA peak in GFLOP/s for FP32 and bfloat16 on the cores this process may use, with
    what it assumed (see the module's docstring)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    amd_zen3_or_4 = fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
    if "avx512f" in flags and not amd_zen3_or_4:
        lanes, vector = 16, "2 x 512-bit FMA pipes"
    elif "avx2" in flags and "fma" in flags:
        lanes, vector = 8, "2 x 256-bit FMA pipes" + (" (AVX-512 split in two halves)" if "avx512f" in flags else "")
    else:
        lanes, vector = 4, "2 x 128-bit pipes"
    fp32_per_cycle = 2 * lanes * 2  # pipes x lanes x (multiply + add)
    if "amx_bf16" in flags:
        bf16_per_cycle, bf16_unit = 1024, "AMX tiles"
    elif "avx512_bf16" in flags:
        bf16_per_cycle, bf16_unit = 2 * fp32_per_cycle, "avx512_bf16 dot products"
    else:
        bf16_per_cycle, bf16_unit = fp32_per_cycle, "none (emulated in FP32)"
    ghz, cores = float(fields.get("cpu MHz", "0")) / 1000, len(os.sched_getaffinity(0))
    return {
        "cpu": cpu_name(cpuinfo), "cores": cores, "ghz": round(ghz, 2), "vector": vector, "bf16_unit": bf16_unit,
        "fp32_gflops": round(fp32_per_cycle * ghz * cores), "bf16_gflops": round(bf16_per_cycle * ghz * cores),
    }  # fmt: skip


def _fit_one_pass(model: keras.Model, batches: TrainingInput) -> None:
    model.fit(batches.dataset, epochs=1, verbose=0, shuffle=False, callbacks=[batches])


def trained_model(build: Any, p: dict[str, Any], x: Any, y: Any) -> tuple[keras.Model, TrainingInput]:
    """The stage's model and input, compiled as the stage compiles them, after one untimed pass
    (tracing and oneDNN's kernel choice are not training)."""
    seed_everything(p["seed"])
    model = with_precision(build, p)
    compile_model(model, p, steps_per_epoch=-(-len(y) // p["batch_size"]))
    batches = TrainingInput(x, y, batch_size=p["batch_size"], seed=p["seed"], flip=p["augment_flip"],
                            translate=p["augment_translate"])  # fmt: skip
    _fit_one_pass(model, batches)
    return model, batches


def images_per_cpu_second(model: keras.Model, batches: TrainingInput, images: int) -> float:
    cpu = time.process_time()
    _fit_one_pass(model, batches)
    return images / (time.process_time() - cpu)


# Where a profiled op's time goes, by the name scope TensorFlow gives it: the layer's Keras name
# (conv2d_2, batch_normalization, ...), under gradient_tape/ for the backward pass.
CATEGORIES = (
    ("conv2d", "convolutions"), ("batch_normalization", "batch norm"), ("fused_batch_normalization", "batch norm"),
    ("activation", "relu"),
    ("dense", "dense layers"), ("logits", "dense layers"), ("max_pooling2d", "pooling"), ("dropout", "dropout"),
    ("reshape", "input reshape"), ("flatten", "input reshape"),
)  # fmt: skip


def category(node: str) -> str:
    """What a profiled op belongs to, from its node name."""
    node = node.split("StatefulPartitionedCall/")[-1]
    backward = node.startswith("gradient_tape/")
    for scope, name in CATEGORIES:
        if re.search(rf"(^|/){scope}(_\d+)*/", node):
            return f"{name} ({'backward' if backward else 'forward'})"
    if re.search(r"(^|/)(adam|adamw|sgd)/", node, re.I):
        return "weight average" if re.search(r"moving_average|_ema|average", node) else "optimizer update"
    if re.search(r"(^|/)(compile_loss|categorical_crossentropy|softmax_cross_entropy)", node) or "loss" in node:
        return "loss"
    if "accuracy" in node or "metrics" in node or node.startswith("AssignAddVariableOp"):
        return "metrics"
    if node.startswith(("AddN", "gradient_tape/")):
        return "gradient sums"
    return "other"


def profile(model: keras.Model, batches: TrainingInput) -> dict[str, float]:
    """Share of the op time per category over one traced pass (tf.profiler), in percent."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        _fit_one_pass(model, batches)
        tf.profiler.experimental.stop()
        trace = next(Path(logdir).rglob("*.xplane.pb"))
        space = xplane_pb2.XSpace.FromString(trace.read_bytes())
    totals: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            # Executor threads run the step's ops; the tf.data threads run the input pipeline.
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    node, _, op = plane.event_metadata[event.metadata_id].name.rpartition(":")
                    # "node:OpType"; the executor's own events ("ExecutorState::Process") hold the ops
                    # they run, and are left out so that no time counts twice.
                    if node and not node.endswith(":"):
                        totals[category(node)] += event.duration_ps
            elif line.name.startswith("tf_data_iterator_get_next"):
                totals["input (tf.data)"] += sum(
                    e.duration_ps for e in line.events if plane.event_metadata[e.metadata_id].name == "Iterator::Root"
                )
    whole = sum(totals.values())
    return {name: round(100 * value / whole, 1) for name, value in totals.most_common()}


def measure(name: str, images: int, with_profile: bool) -> dict[str, Any]:
    build, schema = MODELS[name]
    p = params.load(f"train_{name}", schema)
    x, y = load_arrays(paths.TRAIN)
    model, batches = trained_model(build, p, x[:images], y[:images])
    forward = forward_flops(model)
    step = training_flops(forward)
    rate = images_per_cpu_second(model, batches, images)
    cpu = peak()
    peak_gflops = cpu["bf16_gflops" if p["precision"] == "mixed_bfloat16" else "fp32_gflops"]
    row = {
        "model": name, "precision": p["precision"], "batch_size": p["batch_size"],
        "forward_mflop": round(sum(forward.values()) / 1e6, 2), "train_mflop": round(step / 1e6, 2),
        "layers_mflop": {k: round(v / 1e6, 2) for k, v in forward.items()},
        "images_per_cpu_second": round(rate), "gflop_per_cpu_second": round(rate * step / 1e9, 1),
        # Per CPU-second is per core-second: a core's share of the peak.
        "fraction_of_peak": round(rate * step / 1e9 / (peak_gflops / cpu["cores"]), 3), **cpu,
    }  # fmt: skip
    if with_profile:
        row["profile"] = profile(model, batches)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6400, help="training images per timed pass")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["cnn", "mlp"])
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the per-op profile")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    rows = [measure(name, args.images, args.profile) for name in args.models]
    with RECORD.open("a") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    first = rows[0]
    log.info("CPU: %s, %d cores at %.2f GHz (%s; bfloat16: %s)", first["cpu"], first["cores"], first["ghz"],
             first["vector"], first["bf16_unit"])  # fmt: skip
    log.info("FMA peak: %d GFLOP/s FP32, %d bfloat16, on %d cores", first["fp32_gflops"], first["bf16_gflops"],
             first["cores"])  # fmt: skip
    log.info("\n| model | precision | MFLOP forward / training step, per image | images per CPU-s "
             "| GFLOP per CPU-s | of one core's peak |\n|---|---|---:|---:|---:|---:|")  # fmt: skip
    for r in rows:
        log.info("| %s | %s | %.1f / %.1f | %d | %.1f | %.0f%% |", r["model"], r["precision"], r["forward_mflop"],
                 r["train_mflop"], r["images_per_cpu_second"], r["gflop_per_cpu_second"],
                 100 * r["fraction_of_peak"])  # fmt: skip
    for r in rows:
        if "profile" in r:
            log.info("\n%s, share of the op time in training steps:", r["model"])
            log.info("\n".join(f"  {share:5.1f}%  {name}" for name, share in r["profile"].items()))


if __name__ == "__main__":
    main()
