"""Dropout drawing its mask with the Philox generator, which XLA compiles efficiently on every device.

`keras.layers.Dropout` asks TensorFlow for the default stateless algorithm; under XLA on CPU that resolves to
ThreeFry, which made a jit-compiled VSLNet step 6x slower (0.67 s to draw one [16, 8, 128, 128] attention-dropout mask
versus 0.009 s with Philox; docs/benchmarks.md). The seed state is a Keras `SeedGenerator`, like Keras' own layer.
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
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed, alg="philox") >= self.rate
        return tf.where(keep, inputs / tf.cast(1.0 - self.rate, inputs.dtype), tf.zeros_like(inputs))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
