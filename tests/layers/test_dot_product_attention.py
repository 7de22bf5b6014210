"""The attention core's hand-written backward pass against TensorFlow's autodiff of the same forward ops, and its
forward against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.model.layers import compilation, dot_product_attention

RNG = np.random.default_rng(0)


def _inputs(batch=2, heads=3, length=7, head_size=4):
    query, key, value = (RNG.normal(size=(batch, heads, length, head_size)).astype("float32") for _ in range(3))
    key_mask = np.arange(length)[None, :] < np.array([length, 3])[:, None]
    keep = RNG.uniform(size=(batch, heads, length, length)) > 0.3
    return query, key, value, key_mask, keep


def _numpy_attention(query, key, value, key_mask, keep, keep_scale):
    scores = np.where(key_mask[:, None, None, :], query @ np.swapaxes(key, -1, -2), -np.inf)
    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    return (np.where(keep, probabilities, 0.0) * keep_scale) @ value


def _outputs_and_gradients(query, key, value, key_mask, keep, keep_scale):
    weights = tf.constant(np.random.default_rng(1).normal(size=value.shape).astype("float32"))

    @tf.function
    def run(query, key, value):
        with tf.GradientTape() as tape:
            tape.watch([query, key, value])
            heads = dot_product_attention.attend(query, key, value, key_mask, keep, keep_scale)
            loss = tf.reduce_sum(heads * weights)
        return heads, tape.gradient(loss, [query, key, value])

    return run(tf.constant(query), tf.constant(key), tf.constant(value))


@pytest.mark.parametrize("dropout", [True, False])
def test_fused_backward_equals_tensorflow_autodiff_and_forward_equals_numpy(dropout):
    query, key, value, key_mask, keep = _inputs()
    keep, keep_scale = (keep, 1.25) if dropout else (None, 1.0)
    heads, gradients = _outputs_and_gradients(query, key, value, key_mask, keep, keep_scale)
    with compilation.plain_graph():
        plain_heads, plain_gradients = _outputs_and_gradients(query, key, value, key_mask, keep, keep_scale)
    want = _numpy_attention(query, key, value, key_mask, keep if dropout else True, keep_scale)
    np.testing.assert_allclose(heads, want, atol=1e-5)
    np.testing.assert_allclose(plain_heads, want, atol=1e-5)
    for got, expected in zip(gradients, plain_gradients):
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(got, expected, atol=1e-5)
    # Keys past a row's length get no gradient.
    np.testing.assert_array_equal(gradients[1].numpy()[1, :, 3:], 0.0)
