"""What train_mlp's and train_cnn's sections of params.yaml share."""

from __future__ import annotations

from stages.lib import params


class TrainParams(params.Section):
    """What train-mlp and train-cnn share: the optimiser, the schedule and the augmentation."""

    epochs: params.integer(1)
    """Passes over the training split at most."""
    batch_size: params.integer(1, 65536)
    optimizer: params.choice("adam", "nesterov")
    """adam: Adam (AdamW with weight_decay); nesterov: SGD with Nesterov momentum 0.9 (with
    weight_decay, decoupled as AdamW's)."""
    learning_rate: params.number(0, exclusive="min")
    """The optimizer's learning rate; the peak of a schedule. Any positive number: a hopeless one
    is for a search to prune."""
    seed: params.integer(0)
    """Seeds the weights, the shuffling and the augmentation: same params, same model."""
    patience: params.integer(1)
    """Epochs without a better val_accuracy before stopping (the best epoch is kept)."""
    lr_schedule: params.choice("constant", "cosine", "triangular")
    """constant; cosine: decays to 0 over `epochs`; triangular: down to 0 in a straight line."""
    warmup: params.number(0, 1, exclusive="max")
    """The fraction of the steps over which the learning rate first rises from 0 to its peak in a
    straight line (cosine and triangular); 0 = none."""
    augment_flip: params.choice("none", "random", "alternate")
    """Left-right flips while training: none; random (each image, each epoch, a coin); alternate
    (a fixed random half of the images in even epochs, the other half in odd ones)."""
    augment_translate: params.integer(0, 4)
    """Random shifts while training, up to this many pixels each way (0 = none)."""
    steps_per_execution: params.integer(1, 1024)
    """Training steps per call into TensorFlow: fewer Python round trips for small models."""
    label_smoothing: params.number(0, 1, exclusive="max")
    """e: train towards 1 - e + e/10 for the true class and e/10 for the others."""
    weight_decay: params.number(0, 1, exclusive="max")
    """AdamW's decoupled weight decay; 0 = plain Adam."""
    ema: params.number(0, 1, exclusive="max")
    """Momentum of an exponential moving average of the weights, which is what is validated and
    kept (0.99: about the last 100 steps); 0 = none."""
    precision: params.choice("float32", "mixed_bfloat16")
    """mixed_bfloat16: layers compute in bfloat16 and keep float32 weights; faster only on CPUs
    with bfloat16 instructions (avx512_bf16, AMX), emulated (slower) elsewhere."""
