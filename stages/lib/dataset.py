"""The training stages' input: tf.data pipelines of images and one-hot labels, with the training
augmentation (flips, translations) drawn per image and epoch from the seed, so that two runs (and a
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
        n, seed, side = len(y), tf.constant(seed, tf.int64), x.shape[1]

        def one_epoch(_: tf.Tensor) -> tf.data.Dataset:
            # Read when each pass begins, after on_epoch_begin has set the epoch. Every draw of the
            # epoch is made here, once for all images, and the pipeline then moves whole batches:
            # a map per image cost the MLP about half of its epoch's CPU time.
            epoch = self.epoch.value()
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), tf.stack([seed, epoch]))
            if flip == "random":  # a fresh coin for every image and epoch
                coins = tf.random.stateless_uniform([n], tf.stack([seed, epoch]))
            elif flip == "alternate":  # a fixed coin per image, turned over every other epoch
                fixed = tf.random.stateless_uniform([n], tf.stack([seed, tf.constant(-1, tf.int64)]))
                coins = tf.abs(tf.cast(epoch % 2, tf.float32) - fixed)
            else:
                coins = tf.ones([n])
            # Each image's top-left corner in the edge-padded image: 0..2*translate each way.
            starts = tf.random.stateless_uniform([n, 2], tf.stack([seed + 1, epoch]), minval=0,
                                                 maxval=2 * translate + 1, dtype=tf.int32)  # fmt: skip
            columns = (order, tf.gather(coins, order) < 0.5, tf.gather(starts, order))
            return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)

        def batch(index: tf.Tensor, flipped: tf.Tensor, start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            batch_images = tf.gather(images, index)
            if flip != "none":
                batch_images = tf.where(flipped[:, None, None], tf.reverse(batch_images, axis=[2]), batch_images)
            if translate:
                edges = [[0, 0], [translate, translate], [translate, translate]]
                padded = tf.pad(batch_images, edges, mode="SYMMETRIC")
                window = tf.range(side)
                rows = tf.gather(padded, start[:, :1] + window, axis=1, batch_dims=1)
                batch_images = tf.gather(rows, start[:, 1:] + window, axis=2, batch_dims=1)
            return batch_images, tf.gather(labels, index)

        # One batch at a time, no prefetch: with op determinism on (seed_everything), tf.data's
        # make_deterministic rewrite runs every dataset function in order, because one_epoch reads a
        # variable (a stateful op). It would turn a parallel map into this one and zero a prefetch
        # buffer anyway, and its rewrite of a parallel map writes a spurious C++ error on every fit
        # (TensorFlow 2.21: "NodeDef mentions attribute use_unbounded_threadpool which is not in the
        # op definition: Op<name=MapDataset ...").
        self.dataset = (
            tf.data.Dataset.from_tensors(0)
            .flat_map(one_epoch)
            .apply(tf.data.experimental.assert_cardinality(-(-n // batch_size)))  # so that Keras knows an epoch's steps
            .map(batch)
        )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)
