"""Dropout drawing its mask with the Philox generator, 8 random bits per value.

`keras.layers.Dropout` asks TensorFlow for the default stateless algorithm; under XLA on CPU that resolves to
ThreeFry, which made a jit-compiled VSLNet step 6x slower (0.67 s to draw one [16, 8, 128, 128] attention-dropout mask
versus 0.009 s with Philox; docs/benchmarks.md). Random bits are still the largest cost of dropout: a VSLNet-L step at
n = 600 draws about 170 million values, so each 32-bit Philox output serves four values (a uint8 view), which took
0.1 s off that step against two values per output (a uint16 view), and the mask is applied as one multiply by
0 or 1 / (1 - rate), whose gradient is a single multiply too.

The rate is rounded to a multiple of 1/256 (0.2 -> 51/256 = 0.1992) and kept values are scaled by the exact keep
probability, so the layer stays unbiased. The seed state is a Keras `SeedGenerator`, like Keras' own layer.
"""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import arguments


@keras.saving.register_keras_serializable(package="nlvl_tf")
class Dropout(keras.layers.Layer):
    """Inverted dropout: in training, zeroes each value with probability `rate` and scales the rest by 1 / (1 - rate).

    Args:
        rate: drop probability in [0, 1).
        seed: optional int seeding the layer's generator (default: from Keras' global seed).

    Example:
    >>> dropout = Dropout(0.2)
    >>> dropout(keras.ops.ones([2, 8]), training=True)  # values 0 or 256 / 205
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = arguments.rate("rate", rate)
        self.seed = seed
        if self.rate > 0:
            self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = self.keep_mask(tf.shape(inputs))
        return inputs * tf.where(keep, tf.constant(self.keep_scale, inputs.dtype), tf.constant(0.0, inputs.dtype))

    def keep_mask(self, shape):
        """A fresh bool mask of `shape`, True where a value is kept (probability 1 - drop_threshold / 256): for callers
        that apply the mask and the 1 / (1 - rate) scale themselves (where the scale folds into a smaller tensor)."""
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        size = tf.reduce_prod(shape)
        words = tf.random.stateless_uniform(
            [(size + 3) // 4], seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
        )
        draws = tf.reshape(tf.reshape(tf.bitcast(words, tf.uint8), [-1])[:size], shape)
        return draws >= tf.constant(self.drop_threshold, tf.uint8)

    @property
    def keep_scale(self):
        """1 / the exact keep probability: kept values are multiplied by it, so the layer stays unbiased."""
        return 256.0 / (256 - self.drop_threshold)

    @property
    def drop_threshold(self):
        """Draws (uniform in 0..255) below this are dropped: the effective rate is drop_threshold / 256."""
        return min(round(self.rate * 256), 255)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
