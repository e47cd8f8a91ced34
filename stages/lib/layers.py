"""The parts of a model that the MLP and the CNN share: the input, the logits, batch normalisation,
and the precision the layers compute in. Both models output logits for 10 classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stages.lib.idx import N_CLASSES
from stages.lib.tf_runtime import keras, tf

layers = keras.layers

INPUT_SHAPE = (28, 28)


def add_input(model: keras.Sequential) -> None:
    """28x28 input as one channel. (The training augmentation is the input pipeline's:
    stages/lib/dataset.py; a trained model holds no random layers.)"""
    model.add(keras.Input(INPUT_SHAPE))
    model.add(layers.Reshape((*INPUT_SHAPE, 1)))


def logits() -> layers.Dense:
    """The output layer, in float32 at any precision: softmax and the loss need its range."""
    return layers.Dense(N_CLASSES, name="logits", dtype="float32")


@keras.saving.register_keras_serializable(package="fmnist")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's BatchNormalization (same weights, same inference), trained with TensorFlow's fused
    kernel: one op forward and one backward where Keras 3 composes about twenty elementwise ops
    and reductions. 1.4x the CNN's training images per CPU-second (bench/kernels.py). The batch's
    variance enters the moving average with Bessel's correction, as Keras 2's fused layer did;
    over a batch's 25,000 values per channel that is a rounding. `plain` turns a trained model's
    layers back into Keras's own, so that model files load in plain Keras."""

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not training:
            return super().call(inputs, training=training, mask=mask)
        # The fused kernel is for images (N, H, W, C); a dense layer's (N, C) is a 1x1 image.
        images = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]])
        dtype = images.dtype if images.dtype in (tf.float32, tf.bfloat16) else tf.float32
        normalized, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            tf.cast(images, dtype), self.gamma, self.beta, epsilon=self.epsilon, is_training=True
        )
        for average, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            average.assign(average * self.momentum + batch * (1.0 - self.momentum))
        return tf.reshape(tf.cast(normalized, inputs.dtype), tf.shape(inputs))


def batch_norm(momentum: float) -> layers.BatchNormalization:
    """Batch normalisation over the last axis, trained fused; `momentum` of its moving statistics
    (Keras's default 0.99 averages about the last 100 batches)."""
    return FusedBatchNormalization(momentum=momentum)


def plain(model: keras.Model) -> keras.Model:
    """`model` with Keras's own BatchNormalization in place of the fused one: the same weights and
    the same predictions, in a model that plain Keras loads (what a model file holds)."""

    def clone(layer: layers.Layer) -> layers.Layer:
        kind = layers.BatchNormalization if isinstance(layer, FusedBatchNormalization) else type(layer)
        return kind.from_config(layer.get_config())

    if not any(isinstance(layer, FusedBatchNormalization) for layer in model.layers):
        return model
    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def with_precision(build: Callable[[dict[str, Any]], keras.Model], p: dict[str, Any]) -> keras.Model:
    """`build(p)` with its layers in `p["precision"]` (Keras's dtype policy, recorded in the
    saved model, so a loaded model computes as it was trained)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(p["precision"])
    try:
        return build(p)
    finally:
        keras.config.set_dtype_policy(previous)
