"""A dense projection over the last axis with weights the caller has transformed first (scaled, sliced, cast)."""

import tensorflow as tf


def project(inputs, kernel, bias=None):
    """inputs [..., d_in] x kernel [d_in, d_out] (+ bias [d_out]) -> [..., d_out] in the inputs' dtype.

    One 2-D GEMM over all leading positions (the bias added by `bias_add`, which oneDNN fuses into it); the leading
    axes keep whatever static sizes they had.
    """
    rows = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), tf.cast(kernel, inputs.dtype))
    if bias is not None:
        rows = tf.nn.bias_add(rows, tf.cast(bias, inputs.dtype))
    return tf.reshape(rows, tf.concat([tf.shape(inputs)[:-1], [kernel.shape[-1]]], axis=0))
