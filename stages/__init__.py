"""The DVC stages of the Fashion-MNIST pipeline, one module per dvc.yaml stage; their shared helpers in lib/."""
