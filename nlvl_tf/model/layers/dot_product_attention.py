"""Softmax attention over masked keys, with dropout on the probabilities, and a backward pass written out.

The probabilities are [B, h, L, L] (the video's self-attention: [16, 8, 600, 600] = 184 MB at n = 600; VSLNet-L's
clips hold as many per encoder), while the heads are only 16 wide, so the passes over that tensor cost more than the
matrix products around it. TensorFlow's autodiff of dropout and softmax makes five passes backward (the dropout
multiply, then softmax's multiply, sum, subtract and multiply). Here dropout zeroes values with one select (its
1 / (1 - rate) scale moves to the [B, h, L, dh] heads), and the step from the dropped probabilities' gradient to the
scores' gradient is one XLA-compiled function, two fused loops over the tensor. The whole attention, forward and
backward at [16, 8, 600, 600], took 226 ms against 238 ms with TensorFlow's gradient of the same forward ops
(`benchmarks/attention.py`, docs/benchmarks.md): a small gain, most of the time being the matrix products' and the
softmax's own passes.

Traced inside `compilation.plain_graph()` (a server without XLA), the same forward ops run with TensorFlow's own
gradient.
"""

import tensorflow as tf

from nlvl_tf.model.layers import compilation, masking


def attend(query, key, value, key_mask, keep=None, keep_scale=1.0):
    """softmax(query key^T, over valid keys) value, with dropout on the probabilities.

    Args:
        query, key, value: [B, h, L, dh] (the query already scaled by 1 / sqrt(dh)).
        key_mask: [B, L] bool, False for keys no query may attend to.
        keep: optional [B, h, L, L] bool dropout mask (True = kept), e.g. `Dropout.keep_mask`.
        keep_scale: the factor kept probabilities are scaled by (1 / keep probability).

    Returns:
        [B, h, L, dh] in the value's dtype.
    """
    if compilation.in_plain_graph():
        return _forward(query, key, value, key_mask, keep, keep_scale)[0]
    return _attend_with_fused_backward(query, key, value, key_mask, keep, keep_scale)


def _forward(query, key, value, key_mask, keep, keep_scale):
    """(heads, float32 probabilities, the dropped probabilities in the value's dtype)."""
    probabilities = _probabilities(query, key, key_mask)
    dropped = tf.cast(probabilities, value.dtype)
    if keep is not None:
        dropped = tf.where(keep, dropped, tf.zeros([], dropped.dtype))
    heads = tf.matmul(dropped, value)
    if keep_scale != 1.0:
        heads = heads * tf.constant(keep_scale, heads.dtype)
    return heads, probabilities, dropped


def _probabilities(query, key, key_mask):
    """softmax(query key^T) over the valid keys, float32 [B, h, L, L].

    In float32 the mask rides in the product itself as one more head dimension (1 in every query, 0 or MASK_VALUE in
    every key), which saves the separate pass that adds it to the [B, h, L, L] scores: the forward pass at
    [64, 8, 600, 600] (a batch of 64 served at n = 600) took 148 against 192 ms, with the same probabilities (the added
    term is exactly 0 for valid keys). Lower precisions cannot hold MASK_VALUE and add it to float32 scores instead.
    """
    if query.dtype != tf.float32:
        return masking.masked_softmax(tf.matmul(query, key, transpose_b=True), key_mask[:, tf.newaxis, tf.newaxis, :])
    key_bias = tf.where(key_mask, 0.0, masking.MASK_VALUE)[:, tf.newaxis, :, tf.newaxis]
    key_bias = tf.broadcast_to(key_bias, tf.concat([tf.shape(key)[:3], [1]], axis=0))
    query = tf.concat([query, tf.ones_like(query[..., :1])], axis=-1)
    return tf.nn.softmax(tf.matmul(query, tf.concat([key, key_bias], axis=-1), transpose_b=True))


def _attend_with_fused_backward(query, key, value, key_mask, keep, keep_scale):
    @tf.custom_gradient
    def attention(query, key, value):
        heads, probabilities, dropped = _forward(query, key, value, key_mask, keep, keep_scale)

        def gradient(heads_grad):
            if keep_scale != 1.0:
                heads_grad = heads_grad * tf.constant(keep_scale, heads_grad.dtype)
            value_grad = tf.matmul(dropped, heads_grad, transpose_a=True)
            dropped_grad = tf.matmul(heads_grad, value, transpose_b=True)
            scores_grad = tf.cast(_scores_gradient(dropped_grad, probabilities, keep), query.dtype)
            return tf.matmul(scores_grad, key), tf.matmul(scores_grad, query, transpose_a=True), value_grad

        return heads, gradient

    return attention(query, key, value)


@tf.function(jit_compile=True)
def _scores_gradient(dropped_grad, probabilities, keep):
    """d loss / d scores from d loss / d dropped probabilities: the dropout select's and the softmax's gradients in one
    compiled function (masked keys have probability 0, so their gradient is 0, as the additive mask's would be)."""
    grad = tf.cast(dropped_grad, tf.float32)
    if keep is not None:
        grad = tf.where(keep, grad, 0.0)
    return probabilities * (grad - tf.reduce_sum(grad * probabilities, axis=-1, keepdims=True))
