"""A unidirectional LSTM whose input projection for all time steps is one matrix multiply.

The conditioned span predictor (paper Eq. 4) and the BiLSTM encoder ablation (paper Table 8) run LSTMs over the whole
video. Projecting the inputs of every step at once and leaving only the recurrent product inside the loop turns most of
the work into one large GEMM; the loop is a `tf.while_loop` that XLA compiles. The layer is causal, so padded steps at
the end of a sequence never change the outputs at valid steps.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="nlvl_tf")
class UnidirectionalLSTM(keras.layers.Layer):
    """LSTM over [B, L, d_in] returning every hidden state [B, L, units].

    Gates are ordered input, forget, cell, output (Keras' order). The forget-gate bias starts at 1 like TF1's
    `LSTMCell(forget_bias=1.0)` used by the authors. One bias vector (TF's convention, not PyTorch's two).

    Args:
        units: hidden size.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"units must be positive, got {units}")
        self.units = int(units)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"{self.name}: the last input dimension must be known, got shape {input_shape}")
        self.kernel = self.add_weight(
            name="kernel", shape=(input_dim, 4 * self.units), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 4 * self.units), initializer="orthogonal")
        units = self.units

        def unit_forget_bias(shape, dtype=None):
            return tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], axis=0)

        self.bias = self.add_weight(name="bias", shape=(4 * units,), initializer=unit_forget_bias)

    def call(self, inputs):
        kernel = tf.cast(self.kernel, inputs.dtype)
        recurrent_kernel = tf.cast(self.recurrent_kernel, inputs.dtype)
        projected = tf.einsum("bld,dg->lbg", inputs, kernel) + tf.cast(self.bias, inputs.dtype)
        batch = tf.shape(inputs)[0]
        zeros = tf.zeros([batch, self.units], inputs.dtype)

        def step(state, gates_from_input):
            hidden, cell = state
            gates = gates_from_input + tf.matmul(hidden, recurrent_kernel)
            input_gate, forget_gate, candidate, output_gate = tf.split(gates, 4, axis=-1)
            cell = tf.sigmoid(forget_gate) * cell + tf.sigmoid(input_gate) * tf.tanh(candidate)
            hidden = tf.sigmoid(output_gate) * tf.tanh(cell)
            return hidden, cell

        hidden_states, _ = tf.scan(step, projected, initializer=(zeros, zeros))
        return tf.transpose(hidden_states, [1, 0, 2])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
