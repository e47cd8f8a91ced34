"""DVC stages of the Fashion-MNIST pipeline: one module per stage plus shared helpers."""
