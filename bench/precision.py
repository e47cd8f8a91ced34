"""float32 against mixed_bfloat16: training throughput of each model on this CPU.

    python bench/precision.py [--images 6400] [--rounds 3]

Each model with its default params from params.yaml, trained the stage's way (tf.data,
`steps_per_execution`) on the first `--images` training images after an untimed warm-up pass,
the two precisions alternating for `--rounds` rounds; medians of images per wall second and per
CPU-second. Read the CPU-second ratio: on this shared virtual machine the host sometimes takes a
core away, which moves wall time but not CPU time. Accuracy in bfloat16 is the frontier's job
(`python bench/frontier.py cnn precision=mixed_bfloat16`).
"""

from __future__ import annotations

import argparse
import logging
import statistics

from frontier import MODELS, cpu_name
from training import images_per_second

from stages.lib import params, paths
from stages.lib.files import load_arrays

log = logging.getLogger("bench.precision")
PRECISIONS = ("float32", "mixed_bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6400, help="training images per timed pass")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per precision")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    x, y = load_arrays(paths.TRAIN)
    x, y = x[: args.images], y[: args.images]
    log.info("CPU: %s", cpu_name())
    log.info("model  img/s float32  img/s bf16  ratio  img/cpu-s float32  img/cpu-s bf16  ratio")
    for name, (build, schema) in MODELS.items():
        p = params.load(f"train_{name}", schema)
        rates: dict[str, list[tuple[float, float]]] = {precision: [] for precision in PRECISIONS}
        for _ in range(args.rounds):
            for precision in PRECISIONS:
                rates[precision].append(images_per_second(build, {**p, "precision": precision}, x, y, seed_style=False))
        (wall32, cpu32), (wall16, cpu16) = (
            (statistics.median(r[0] for r in rates[pr]), statistics.median(r[1] for r in rates[pr]))
            for pr in PRECISIONS
        )
        log.info(
            "%5s  %13.0f  %10.0f  %4.2fx  %17.0f  %14.0f  %4.2fx",
            *(name, wall32, wall16, wall16 / wall32, cpu32, cpu16, cpu16 / cpu32),
        )


if __name__ == "__main__":
    main()
