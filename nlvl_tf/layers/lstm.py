"""A unidirectional LSTM: one matrix multiply for every step's input projection, and an XLA-compiled recurrence.

The conditioned span predictor (paper Eq. 4) and the BiLSTM encoder ablation (paper Table 8) run LSTMs over the whole
video. Projecting the inputs of every step at once turns most of the work into one large GEMM. What remains, the
recurrence h_t = f(x_t W + h_{t-1} U), is a loop of small ops whose per-op dispatch cost dominates in TensorFlow's
graph executor (about 20 us per step at batch 1); compiled by XLA into one native loop it ran 2.8x faster at batch 1,
n = 128. Its backward pass is written out (backpropagation through time in a second compiled loop), because a
compiled loop's autodiff would pass TensorLists across the XLA boundary, which TensorFlow does not support.
The layer is causal, so padded steps at the end of a sequence never change the outputs at valid steps.
"""

import keras
import tensorflow as tf


@tf.function(jit_compile=True)
def _recurrence_forward(projected, recurrent_kernel):
    """projected [B, L, 4u] (x W + b), recurrent_kernel [u, 4u] -> hidden states [B, L, u], and the time-major cell
    states [L, B, u] and activated gates [L, B, 4u] (sigmoid i, f, o; tanh candidate) that the backward pass needs."""
    units = recurrent_kernel.shape[0]
    projected = tf.transpose(projected, [1, 0, 2])
    steps = tf.shape(projected)[0]
    zeros = tf.zeros_like(projected[0, :, :units])
    hidden_states = tf.TensorArray(projected.dtype, size=steps)
    cell_states = tf.TensorArray(projected.dtype, size=steps)
    gate_values = tf.TensorArray(projected.dtype, size=steps)

    def step(t, hidden, cell, hidden_states, cell_states, gate_values):
        input_gate, forget_gate, candidate, output_gate = tf.split(
            projected[t] + tf.matmul(hidden, recurrent_kernel), 4, axis=-1)
        input_gate, forget_gate, output_gate = tf.sigmoid(input_gate), tf.sigmoid(forget_gate), tf.sigmoid(output_gate)
        candidate = tf.tanh(candidate)
        cell = forget_gate * cell + input_gate * candidate
        hidden = output_gate * tf.tanh(cell)
        gates = tf.concat([input_gate, forget_gate, candidate, output_gate], axis=-1)
        return (t + 1, hidden, cell, hidden_states.write(t, hidden), cell_states.write(t, cell),
                gate_values.write(t, gates))

    _, _, _, hidden_states, cell_states, gate_values = tf.while_loop(
        lambda t, *_: t < steps, step, (0, zeros, zeros, hidden_states, cell_states, gate_values),
        maximum_iterations=steps)
    return tf.transpose(hidden_states.stack(), [1, 0, 2]), cell_states.stack(), gate_values.stack()


@tf.function(jit_compile=True)
def _recurrence_backward(hidden_grads, hidden_states, cell_states, gate_values, recurrent_kernel):
    """Backpropagation through time: d loss / d projected [B, L, 4u] and d loss / d recurrent_kernel, from the
    gradients and values of the hidden states [B, L, u] and the forward pass's time-major cell states and gates."""
    units = recurrent_kernel.shape[0]
    hidden_grads = tf.transpose(hidden_grads, [1, 0, 2])
    hidden_states = tf.transpose(hidden_states, [1, 0, 2])
    steps = tf.shape(hidden_grads)[0]
    zeros = tf.zeros_like(hidden_grads[0])
    previous_cells = tf.concat([zeros[tf.newaxis], cell_states[:-1]], axis=0)
    projected_grads = tf.TensorArray(hidden_grads.dtype, size=steps)

    def step(t, hidden_grad_next, cell_grad_next, projected_grads):
        input_gate, forget_gate, candidate, output_gate = tf.split(gate_values[t], 4, axis=-1)
        cell_tanh = tf.tanh(cell_states[t])
        hidden_grad = hidden_grads[t] + hidden_grad_next
        cell_grad = cell_grad_next + hidden_grad * output_gate * (1.0 - cell_tanh * cell_tanh)
        gate_grads = tf.concat([
            cell_grad * candidate * input_gate * (1.0 - input_gate),
            cell_grad * previous_cells[t] * forget_gate * (1.0 - forget_gate),
            cell_grad * input_gate * (1.0 - candidate * candidate),
            hidden_grad * cell_tanh * output_gate * (1.0 - output_gate)], axis=-1)
        return (t - 1, tf.matmul(gate_grads, recurrent_kernel, transpose_b=True), cell_grad * forget_gate,
                projected_grads.write(t, gate_grads))

    _, _, _, projected_grads = tf.while_loop(
        lambda t, *_: t >= 0, step, (steps - 1, zeros, zeros, projected_grads), maximum_iterations=steps)
    projected_grads = projected_grads.stack()
    previous_hidden = tf.concat([zeros[tf.newaxis], hidden_states[:-1]], axis=0)
    kernel_grad = tf.einsum("lbu,lbg->ug", previous_hidden, projected_grads)
    return tf.transpose(projected_grads, [1, 0, 2]), tf.reshape(kernel_grad, [units, 4 * units])


@tf.custom_gradient
def _recurrence(projected, recurrent_kernel):
    """Hidden states [B, L, u] of the LSTM recurrence over precomputed input projections [B, L, 4u], with the BPTT
    gradient."""
    # stop_gradient keeps TensorFlow from rewriting the compiled call for its own autodiff (which would export the
    # loop's TensorLists); the gradient below replaces it.
    hidden_states, cell_states, gate_values = _recurrence_forward(
        tf.stop_gradient(projected), tf.stop_gradient(recurrent_kernel))

    def gradient(hidden_grads):
        return _recurrence_backward(hidden_grads, hidden_states, cell_states, gate_values, recurrent_kernel)

    return hidden_states, gradient


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
        # One [B L, d] x [d, 4u] GEMM; an einsum straight to time-major [L, B, 4u] ran 2x slower with its transposes.
        batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
        projected = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), kernel) + tf.cast(self.bias, inputs.dtype)
        return _recurrence(tf.reshape(projected, [batch, steps, 4 * self.units]), recurrent_kernel)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
