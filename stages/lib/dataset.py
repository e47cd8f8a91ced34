"""The training stages' input: tf.data pipelines of images and one-hot labels, with the training
augmentation (flips, translations) applied per image, seeded by the epoch, so that two runs (and a
resumed run) see the same images in the same order."""

from __future__ import annotations

import numpy as np

from stages.lib.idx import N_CLASSES
from stages.lib.tf_runtime import keras, tf


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int) -> tf.data.Dataset:
    """Batched and prefetched, in order (for validation): as the TensorFlow Sonnet tutorial feeds
    Fashion-MNIST. Labels one-hot, so that the loss can smooth them."""
    ds = tf.data.Dataset.from_tensor_slices((x, np.eye(N_CLASSES, dtype=np.float32)[y]))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class TrainingInput(keras.callbacks.Callback):
    """The training split, one epoch per pass of `dataset`, for `model.fit` with this object
    among its callbacks (it tells the pipeline which epoch is starting).

    Each epoch is a permutation seeded by (seed, epoch). `flip`: "random" flips each image
    left-right with probability 1/2, anew every epoch; "alternate" flips a fixed random half of the
    images in even epochs and the other half in odd ones, so that every image is seen both ways in
    any two epochs (airbench's alternating flip). `translate`: each image moved by up to this many
    pixels each way, the edge repeated (the background, whatever the normalisation).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, flip: str = "none",
                 translate: int = 0):  # fmt: skip
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        images, labels = tf.constant(x), tf.constant(np.eye(N_CLASSES, dtype=np.float32)[y])
        n, seed = len(y), tf.constant(seed, tf.int64)

        def one_epoch(_: tf.Tensor) -> tf.data.Dataset:
            # Read when each pass begins, after on_epoch_begin has set the epoch.
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), tf.stack([seed, self.epoch]))
            return tf.data.Dataset.from_tensor_slices(tf.stack([order, tf.fill([n], self.epoch)], axis=1))

        def example(pair: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            index, epoch = pair[0], pair[1]
            image = tf.gather(images, index)
            if flip != "none":
                if flip == "random":  # a fresh coin for every image and epoch
                    coin = tf.random.stateless_uniform([], tf.stack([seed, index * 100_000 + epoch]))
                else:  # a fixed coin per image, turned over every other epoch
                    fixed = tf.random.stateless_uniform([], tf.stack([seed, index]))
                    coin = tf.abs(tf.cast(epoch % 2, tf.float32) - fixed)
                image = tf.cond(coin < 0.5, lambda: tf.reverse(image, axis=[1]), lambda: image)
            if translate:
                start = tf.random.stateless_uniform([2], tf.stack([seed + 1, index * 100_000 + epoch]), minval=0,
                                                    maxval=2 * translate + 1, dtype=tf.int32)  # fmt: skip
                padded = tf.pad(image, [[translate, translate], [translate, translate]], mode="SYMMETRIC")
                image = tf.slice(padded, start, tf.shape(image))
            return image, tf.gather(labels, index)

        self.dataset = (
            tf.data.Dataset.from_tensors(0)
            .flat_map(one_epoch)
            .apply(tf.data.experimental.assert_cardinality(n))  # so that Keras knows an epoch's steps
            .map(example, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)
