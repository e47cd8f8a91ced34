"""TensorFlow's C++ start-up lines are dropped from what a stage prints (real warnings are not); the
CPU's bfloat16 instructions are read from Linux's cpuinfo."""

import subprocess
import sys

import pytest

from stages.lib.tf_runtime import cpu_has_bfloat16
from tests.helpers import PROJECT, tf_cpp_lines, tf_startup_lines

# TensorFlow started as the stages start it (its own start-up lines dropped), then the filter around
# lines of each kind.
WRITES_INSIDE_THE_FILTER = r"""
import os, sys
import stages.lib.training
from stages.lib.tf_runtime import startup_lines_dropped
with startup_lines_dropped():
    os.write(2, b"I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see...\n")
    os.write(2, b"W0000 00:00:1.0 1 some_kernel.cc:10] a real warning from C++\n")
    os.write(2, b"E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n")
    print("a Python line on stderr", file=sys.stderr)
print("after the block", file=sys.stderr)
"""


def test_importing_tensorflow_prints_nothing_and_the_filter_keeps_all_but_known_start_up_lines():
    proc = subprocess.run([sys.executable, "-c", WRITES_INSIDE_THE_FILTER], cwd=PROJECT,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert proc.stdout == ""
    # Nothing from the import; of the block, the real warning and the Python line, in their order.
    assert proc.stderr.splitlines() == [
        "W0000 00:00:1.0 1 some_kernel.cc:10] a real warning from C++",
        "a Python line on stderr",
        "after the block",
    ], proc.stderr


@pytest.mark.slow
def test_a_stage_run_by_dvc_repro_prints_its_own_lines_only(reproduced, tmp_path):
    project = reproduced.copy_to(tmp_path / "project")
    proc = project.run("dvc", "repro", "--force", "--single-item", "train-mlp")
    output = proc.stdout + proc.stderr
    assert "Running stage 'train-mlp'" in output and "mlp: kept epoch" in output
    assert tf_startup_lines(output) == [], output
    assert tf_cpp_lines(output) == [], output  # nor any later one, while it trains


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
