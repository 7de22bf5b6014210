"""A unidirectional LSTM: one matrix multiply for every step's input projection, and an XLA-compiled recurrence
(or, traced inside `compilation.plain_graph()`, graphs that need no XLA: for servers without it).

The conditioned span predictor (paper Eq. 4) and the BiLSTM encoder ablation (paper Table 8) run LSTMs over the whole
video. Projecting the inputs of every step at once turns most of the work into one large GEMM. What remains, the
recurrence h_t = f(x_t W + h_{t-1} U), is a loop of small ops whose per-op dispatch cost dominates in TensorFlow's
graph executor (about 20 us per step at batch 1); compiled by XLA into one native loop it ran 2.8x faster at batch 1,
n = 128. Its backward pass is written out (backpropagation through time in a second compiled loop), because a
compiled loop's autodiff would pass TensorLists across the XLA boundary, which TensorFlow does not support.

A compiled loop runs on one core: its per-step matrix multiply is too small for XLA's CPU backend to split. On CPUs
the batch is therefore cut into independent chunks whose loops TensorFlow's inter-op threads run side by side
(forward + backward at batch 64, n = 600 on 2 cores: 389 ms as one loop, 237 ms as two). GPUs get one loop.
The layer is causal, so padded steps at the end of a sequence never change the outputs at valid steps.

Without XLA (an export for tensorflow_model_server), a batch of fewer than 2 * MIN_CHUNK_ROWS rows runs TensorFlow's
fused `BlockLSTMV2` op, one kernel for the whole sequence (same gates, same order): at batch 1 it took 2.3 ms against
3.5-3.9 ms for the while-loop at n = 128, and 6.8-7.1 against 13.4-13.7 ms at n = 600. Larger batches keep the loops
in chunks, where the fused op's per-step input projection made it slower (35 against 21 ms at batch 64, n = 128).
"""

import functools
import os

import keras
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.model.layers import arguments, compilation, linear

# Rows per chunk below which a batch is not cut: smaller loops cost more in launches than they gain.
MIN_CHUNK_ROWS = 8


def _gate_scale_and_shift(units, dtype):
    """[4u] vectors a, b with activated gates = a * tanh(a * pre-activation) + b: sigmoid(x) = 0.5 tanh(x / 2) + 0.5
    for the input, forget and output gates (a = b = 0.5), tanh for the candidate (a = 1, b = 0). One tanh over all
    four gates instead of three sigmoids and a tanh halved the forward loop's time (batch 32, n = 600)."""
    half, one, zero = tf.fill([units], 0.5), tf.ones([units]), tf.zeros([units])
    return tf.cast(tf.concat([half, half, one, half], 0), dtype), tf.cast(tf.concat([half, half, zero, half], 0), dtype)


def _forward_loop(projected, recurrent_kernel):
    """projected [B, L, 4u] (x W + b), recurrent_kernel [u, 4u] -> hidden states [B, L, u], and the time-major cell
    states [L, B, u] and activated gates [L, B, 4u] (sigmoid i, f, o; tanh candidate) that the backward pass needs."""
    units = recurrent_kernel.shape[0]
    scale, shift = _gate_scale_and_shift(units, projected.dtype)
    projected = tf.transpose(projected * scale, [1, 0, 2])
    recurrent_kernel = recurrent_kernel * scale
    steps = tf.shape(projected)[0]
    zeros = tf.zeros_like(projected[0, :, :units])
    hidden_states = tf.TensorArray(projected.dtype, size=steps)
    cell_states = tf.TensorArray(projected.dtype, size=steps)
    gate_values = tf.TensorArray(projected.dtype, size=steps)

    def step(t, hidden, cell, hidden_states, cell_states, gate_values):
        gates = tf.tanh(projected[t] + tf.matmul(hidden, recurrent_kernel)) * scale + shift
        input_gate, forget_gate, candidate, output_gate = tf.split(gates, 4, axis=-1)
        cell = forget_gate * cell + input_gate * candidate
        hidden = output_gate * tf.tanh(cell)
        return (
            t + 1,
            hidden,
            cell,
            hidden_states.write(t, hidden),
            cell_states.write(t, cell),
            gate_values.write(t, gates),
        )

    _, _, _, hidden_states, cell_states, gate_values = tf.while_loop(
        lambda t, *_: t < steps,
        step,
        (0, zeros, zeros, hidden_states, cell_states, gate_values),
        maximum_iterations=steps,
    )
    return tf.transpose(hidden_states.stack(), [1, 0, 2]), cell_states.stack(), gate_values.stack()


_compiled_forward_loop = tf.function(_forward_loop, jit_compile=True)


def _recurrence_forward(projected, recurrent_kernel):
    """`_forward_loop`, XLA-compiled unless traced inside `compilation.plain_graph()`."""
    if compilation.in_plain_graph():
        return _forward_loop(projected, recurrent_kernel)
    return _compiled_forward_loop(projected, recurrent_kernel)


@tf.function(jit_compile=True)
def _recurrence_backward(hidden_grads, hidden_states, cell_states, gate_values, recurrent_kernel):
    """Backpropagation through time: d loss / d projected [B, L, 4u] and d loss / d recurrent_kernel, from the
    gradients and values of the hidden states [B, L, u] and the forward pass's time-major cell states and gates.

    Every factor that does not depend on the incoming gradient is computed for all steps at once before the loop,
    which is left with the chain through h and c and one matrix multiply per step.
    """
    units = recurrent_kernel.shape[0]
    hidden_grads = tf.transpose(hidden_grads, [1, 0, 2])
    hidden_states = tf.transpose(hidden_states, [1, 0, 2])
    steps = tf.shape(hidden_grads)[0]
    zeros = tf.zeros_like(hidden_grads[0])
    previous_cells = tf.concat([zeros[tf.newaxis], cell_states[:-1]], axis=0)
    input_gate, forget_gate, candidate, output_gate = tf.split(gate_values, 4, axis=-1)
    cell_tanh = tf.tanh(cell_states)
    cell_grad_from_hidden = output_gate * (1.0 - cell_tanh * cell_tanh)
    # d gate pre-activations = [dc, dc, dc, dh] * these factors.
    gate_factors = tf.concat(
        [
            candidate * input_gate * (1.0 - input_gate),
            previous_cells * forget_gate * (1.0 - forget_gate),
            input_gate * (1.0 - candidate * candidate),
            cell_tanh * output_gate * (1.0 - output_gate),
        ],
        axis=-1,
    )
    projected_grads = tf.TensorArray(hidden_grads.dtype, size=steps)

    def step(t, hidden_grad_next, cell_grad_next, projected_grads):
        hidden_grad = hidden_grads[t] + hidden_grad_next
        cell_grad = cell_grad_next + hidden_grad * cell_grad_from_hidden[t]
        gate_grads = tf.concat([cell_grad, cell_grad, cell_grad, hidden_grad], axis=-1) * gate_factors[t]
        return (
            t - 1,
            tf.matmul(gate_grads, recurrent_kernel, transpose_b=True),
            cell_grad * forget_gate[t],
            projected_grads.write(t, gate_grads),
        )

    _, _, _, projected_grads = tf.while_loop(
        lambda t, *_: t >= 0, step, (steps - 1, zeros, zeros, projected_grads), maximum_iterations=steps
    )
    projected_grads = projected_grads.stack()
    previous_hidden = tf.concat([zeros[tf.newaxis], hidden_states[:-1]], axis=0)
    kernel_grad = tf.einsum("lbu,lbg->ug", previous_hidden, projected_grads)
    return tf.transpose(projected_grads, [1, 0, 2]), tf.reshape(kernel_grad, [units, 4 * units])


@functools.cache
def _parallel_loops():
    """How many recurrence loops can run at once here: 1 with a GPU, else the CPU cores this process may use."""
    if tf.config.list_logical_devices("GPU"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _num_chunks(batch_size):
    """Chunks for a static batch size: as many as parallel loops, each of at least MIN_CHUNK_ROWS rows."""
    return max(1, min(_parallel_loops(), batch_size // MIN_CHUNK_ROWS))


def _split_batch(tensor, num_chunks):
    """`num_chunks` slices of a tensor's batch axis 0: ceil(B / num_chunks) rows each, the last one the rest."""
    if num_chunks == 1:
        return [tensor]
    batch_size = tf.shape(tensor)[0]
    rows = -(-batch_size // num_chunks)
    sizes = tf.concat([tf.fill([num_chunks - 1], rows), [batch_size - (num_chunks - 1) * rows]], axis=0)
    return tf.split(tensor, sizes, num=num_chunks)


def _forward_in_chunks(projected, recurrent_kernel, num_chunks):
    """The forward loop over `num_chunks` slices of the batch: a list of per-chunk (hidden, cells, gates)."""
    return [_recurrence_forward(inputs, recurrent_kernel) for inputs in _split_batch(projected, num_chunks)]


def _static_batch_recurrence(projected, recurrent_kernel):
    """(hidden states [B, L, u], gradient function) with B static: each chunk keeps its own forward values for its
    own backward loop, so only hidden states and input gradients are ever concatenated."""
    num_chunks = _num_chunks(projected.shape[0])
    chunks = _forward_in_chunks(projected, recurrent_kernel, num_chunks)

    def gradient(hidden_grads):
        results = [
            _recurrence_backward(grads, *saved, recurrent_kernel)
            for grads, saved in zip(_split_batch(hidden_grads, num_chunks), chunks)
        ]
        return tf.concat([grads for grads, _ in results], 0), tf.add_n([kernel_grad for _, kernel_grad in results])

    return tf.concat([hidden for hidden, _, _ in chunks], 0), gradient


def _dynamic_batch_recurrence(projected, recurrent_kernel):
    """(hidden states, gradient function) with B known only at run time (an exported signature): the forward loop runs
    in `_parallel_loops()` chunks (at most 4) when B >= 2 * MIN_CHUNK_ROWS, else as one; the backward as one loop."""
    num_chunks = min(_parallel_loops(), 4)

    def in_chunks():
        hidden, cells, gates = zip(*_forward_in_chunks(projected, recurrent_kernel, num_chunks))
        return tf.concat(hidden, 0), tf.concat(cells, 1), tf.concat(gates, 1)

    def one_loop():
        return _recurrence_forward(projected, recurrent_kernel)

    saved = (
        one_loop() if num_chunks == 1 else tf.cond(tf.shape(projected)[0] >= 2 * MIN_CHUNK_ROWS, in_chunks, one_loop)
    )

    def gradient(hidden_grads):
        return _recurrence_backward(hidden_grads, *saved, recurrent_kernel)

    return saved[0], gradient


def _batch_recurrence(projected, recurrent_kernel):
    if projected.shape[0] is None:
        return _dynamic_batch_recurrence(projected, recurrent_kernel)
    return _static_batch_recurrence(projected, recurrent_kernel)


@tf.custom_gradient
def _compiled_recurrence(projected, recurrent_kernel):
    """The compiled loops with the BPTT gradient (in chunks side by side on CPUs, see the module docstring)."""
    # stop_gradient keeps TensorFlow from rewriting the compiled call for its own autodiff (which would export the
    # loop's TensorLists); the gradient below replaces it.
    projected, recurrent_kernel = tf.stop_gradient(projected), tf.stop_gradient(recurrent_kernel)
    return _batch_recurrence(projected, recurrent_kernel)


def _fused_sequence(inputs, kernel, recurrent_kernel, bias):
    """Hidden states [B, L, u] from TensorFlow's fused BlockLSTMV2 op (gates in our order: input, forget, cell,
    output; no peepholes, no cell clipping), which projects each step's input itself."""
    units = recurrent_kernel.shape[0]
    zeros = tf.zeros([tf.shape(inputs)[0], units], inputs.dtype)
    no_peephole = tf.zeros([units], inputs.dtype)
    hidden_states = tf.raw_ops.BlockLSTMV2(
        seq_len_max=tf.cast(tf.shape(inputs)[1], tf.int64),
        x=tf.transpose(inputs, [1, 0, 2]),
        cs_prev=zeros,
        h_prev=zeros,
        w=tf.concat([kernel, recurrent_kernel], axis=0),
        wci=no_peephole,
        wcf=no_peephole,
        wco=no_peephole,
        b=bias,
        cell_clip=0.0,
        use_peephole=False,
    )[-1]
    return tf.transpose(hidden_states, [1, 0, 2])


def _plain_graph_lstm(inputs, kernel, recurrent_kernel, bias):
    """The LSTM without XLA: the fused op below 2 * MIN_CHUNK_ROWS rows (float32 only), else the while-loops in
    chunks (see the module docstring for the measurements)."""

    def loops():
        return _batch_recurrence(linear.project(inputs, kernel, bias), recurrent_kernel)[0]

    if inputs.dtype != tf.float32:
        return loops()

    @tf.custom_gradient
    def fused(*arguments):
        # The op's registered gradient disagrees with the loop's (measured: off by O(1)); a graph that differentiates
        # the fused forward gets the while-loops' gradient instead, recomputed.
        def gradient(hidden_grads):
            with tf.GradientTape() as tape, compilation.plain_graph():  # traced later, maybe outside the caller's block
                tape.watch(arguments)
                hidden_states = _batch_recurrence(linear.project(*arguments[:2], arguments[3]), arguments[2])[0]
            return tape.gradient(hidden_states, arguments, output_gradients=hidden_grads)

        return _fused_sequence(*arguments), gradient

    batch_size = inputs.shape[0]
    if batch_size is not None:
        return fused(inputs, kernel, recurrent_kernel, bias) if batch_size < 2 * MIN_CHUNK_ROWS else loops()
    return tf.cond(
        tf.shape(inputs)[0] < 2 * MIN_CHUNK_ROWS, lambda: fused(inputs, kernel, recurrent_kernel, bias), loops
    )


@keras.saving.register_keras_serializable(package="nlvl_tf")
class UnidirectionalLSTM(keras.layers.Layer):
    """LSTM over [B, L, d_in] returning every hidden state [B, L, units].

    Gates are ordered input, forget, cell, output (Keras' order). The forget-gate bias starts at 1 like TF1's
    `LSTMCell(forget_bias=1.0)` used by the authors. One bias vector (TF's convention, not PyTorch's two).

    Args:
        units: hidden size.

    Call arguments:
        inputs: [B, L, d_in].

    Returns:
        [B, L, units], every step's hidden state.

    Example:
    >>> UnidirectionalLSTM(128)(features)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = arguments.positive_int("units", units)

    def build(self, inputs_shape):
        input_dim = inputs_shape[-1]
        if input_dim is None:
            raise errors.InputError(f"{self.name}: the last input dimension must be known, got shape {inputs_shape}")
        self.kernel = self.add_weight(name="kernel", shape=(input_dim, 4 * self.units), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 4 * self.units), initializer="orthogonal"
        )
        units = self.units

        def unit_forget_bias(shape, dtype=None):
            return tf.concat([tf.zeros([units]), tf.ones([units]), tf.zeros([2 * units])], axis=0)

        self.bias = self.add_weight(name="bias", shape=(4 * units,), initializer=unit_forget_bias)

    def call(self, inputs):
        if compilation.in_plain_graph():
            return _plain_graph_lstm(
                inputs,
                tf.cast(self.kernel, inputs.dtype),
                tf.cast(self.recurrent_kernel, inputs.dtype),
                tf.cast(self.bias, inputs.dtype),
            )
        # One [B L, d] x [d, 4u] GEMM; an einsum straight to time-major [L, B, 4u] ran 2x slower with its transposes.
        projected = linear.project(inputs, self.kernel, self.bias)
        return _compiled_recurrence(projected, tf.cast(self.recurrent_kernel, inputs.dtype))

    def compute_output_shape(self, inputs_shape):
        return (*inputs_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
