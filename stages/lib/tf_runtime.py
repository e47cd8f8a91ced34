"""TensorFlow and Keras for the stages: started quietly, seeded to be deterministic; what the CPU offers.

On every CPU-only machine, importing TensorFlow writes absl's "before InitializeLog" warning,
a oneDNN notice, a failed CUDA probe and CPU-feature advice, twice (two of its libraries log
them), and the first device query adds a failed cuInit. C++ writes them to file descriptor 2
before TF_CPP_MIN_LOG_LEVEL is read, so no Python setting stops them. Here descriptor 2 is
captured while TensorFlow starts, and everything it held except those known lines is written
back: a real warning or error still gets through. Import `keras` and `tf` from here.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# After start-up: TensorFlow's C++ warnings and errors, not its info lines. A user can set 0.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

STARTUP_LINES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|\] oneDNN custom operations are on"
    r"|\] Could not find cuda drivers on your machine"
    r"|\] This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|\] failed call to cuInit"
    r"|\] Unable to register cu(DNN|FFT|BLAS) factory"
    r"|TF-TRT Warning: Could not find TensorRT"
)


@contextmanager
def startup_lines_dropped() -> Iterator[None]:
    """Hold what is written to descriptor 2 inside the block; then write it out, minus STARTUP_LINES."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:  # a file, not a pipe: nothing blocks however much is written
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not STARTUP_LINES.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


with startup_lines_dropped():
    import keras
    import tensorflow as tf

    tf.config.list_physical_devices()  # probes for a GPU now, inside the block

__all__ = ["cpu_has_bfloat16", "keras", "seed_everything", "tf"]


def seed_everything(seed: int) -> None:
    """Same params, same model: seed Python, NumPy and TF, and make TF's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether the CPU has bfloat16 instructions (x86's avx512_bf16 or AMX); None where Linux's
    cpuinfo is not there to say."""
    try:
        flags = cpuinfo.read_text().split()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags
