"""DVC stages of the Fashion-MNIST pipeline: one module per stage plus shared helpers."""

import os

# Quiets TensorFlow's C++ log (e.g. the failed CUDA probe on CPU-only machines). The few lines
# it prints before absl's logging is initialised cannot be silenced from Python.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
