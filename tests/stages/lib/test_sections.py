"""params.yaml's sections are checked without the stages' heavy libraries: what checks params before
a stage runs (`fmnist-flow run --set`, a pipeline or trial flow run, a sweep) pays no TensorFlow
start-up. The models' own rules: test_params.py."""

import subprocess
import sys

from tests.helpers import PROJECT

HEAVY = ("tensorflow", "keras", "scipy", "matplotlib")


def test_checking_every_section_and_refusing_a_value_imports_none_of_the_stages_libraries():
    script = f"""
import sys
from pathlib import Path
from flows.plumbing import overrides
from stages.lib.params import ParamsError
overrides.check(["train_cnn.dense_units=64"], Path("params.yaml"))
try:
    overrides.check(["train_cnn.convs_per_block=[1, 2, 3]"], Path("params.yaml"))
except ParamsError as exc:
    print(exc)
print(sorted(name for name in {HEAVY!r} if name in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, check=True)
    refused, imported = out.stdout.strip().splitlines()
    assert "train_cnn: convs_per_block = [1, 2, 3] has 3 entries but filters" in refused
    assert imported == "[]", out.stdout
