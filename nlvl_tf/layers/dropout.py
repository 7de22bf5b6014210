"""Dropout drawing its mask with the Philox generator, 16 random bits per value.

`keras.layers.Dropout` asks TensorFlow for the default stateless algorithm; under XLA on CPU that resolves to
ThreeFry, which made a jit-compiled VSLNet step 6x slower (0.67 s to draw one [16, 8, 128, 128] attention-dropout mask
versus 0.009 s with Philox; docs/benchmarks.md). Each 32-bit Philox output also serves two values (a uint16 view):
drawing the [16, 8, 600, 600] attention-dropout mask of an n = 600 step took 0.14 s instead of 0.26 s with one float
per value. The rate is rounded to a multiple of 1/65536 and kept values are scaled by the exact keep probability, so
the layer stays unbiased. The seed state is a Keras `SeedGenerator`, like Keras' own layer.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="nlvl_tf")
class Dropout(keras.layers.Layer):
    """Inverted dropout: in training, zeroes each value with probability `rate` and scales the rest by 1 / (1 - rate).

    Args:
        rate: drop probability in [0, 1).
        seed: optional int seeding the layer's generator (default: from Keras' global seed).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        shape = tf.shape(inputs)
        size = tf.reduce_prod(shape)
        words = tf.random.stateless_uniform(
            [(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox")
        draws = tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size], shape)
        threshold = min(round(self.rate * 65536), 65535)
        keep = draws >= tf.constant(threshold, tf.uint16)
        scale = tf.cast(65536.0 / (65536 - threshold), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
