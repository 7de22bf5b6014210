"""Losses against hand computations: span cross-entropy, weighted masked BCE, batch normalisation, float32."""

import numpy as np
import tensorflow as tf

from nlvl_tf.model import losses
from nlvl_tf.model.layers import masking


def _log_softmax(x):
    return x - np.log(np.exp(x - x.max()).sum()) - x.max()


def test_span_loss_is_the_sum_of_start_and_end_cross_entropy_over_valid_positions():
    start = np.array([[1.0, 2.0, 0.5, 9.0], [0.0, 0.0, 0.0, 0.0]])
    end = np.array([[0.3, -1.0, 2.0, 9.0], [1.0, 2.0, 3.0, 4.0]])
    mask = np.array([[True, True, True, False], [True, True, True, True]])
    got = losses.span_cross_entropy(
        masking.mask_logits(start, mask), masking.mask_logits(end, mask), [1, 0], [2, 3]
    ).numpy()
    want = [-_log_softmax(start[0, :3])[1] - _log_softmax(end[0, :3])[2], -np.log(0.25) - _log_softmax(end[1])[3]]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_weighted_bce_counts_positives_twice_and_ignores_padding():
    logits = np.array([[0.0, 2.0, -1.0, 50.0]])
    labels = np.array([[1.0, 0.0, 1.0, 1.0]])
    mask = np.array([[True, True, True, False]])
    total, count = losses.weighted_binary_cross_entropy(masking.mask_logits(logits, mask), labels, mask)
    want = 2 * np.log(2) + np.log(1 + np.exp(2.0)) + 2 * np.log(1 + np.exp(1.0))
    np.testing.assert_allclose(total, [want], rtol=1e-6)
    np.testing.assert_array_equal(count, [3.0])


def test_combine_normalises_each_component_and_sums_scales():
    terms = losses.combine(
        {
            "span_loss": (tf.constant(6.0), tf.constant(3.0), 1.0),
            "nil_loss/clip_4": (tf.constant(1.0), tf.constant(4.0), 2.0),
            "nil_loss/clip_8": (tf.constant(3.0), tf.constant(2.0), 2.0),
        }
    )
    np.testing.assert_allclose(terms["span_loss"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(terms["nil_loss"], 0.25 + 1.5, rtol=1e-6)
    np.testing.assert_allclose(terms["loss"], 2.0 + 2 * 1.75, rtol=1e-6)


def test_combine_with_a_cross_replica_denominator_gives_shares_of_the_global_loss():
    """Two replicas each normalising by the summed denominator add up to the one-replica value."""
    halves = [(tf.constant(6.0), tf.constant(3.0)), (tf.constant(2.0), tf.constant(1.0))]
    total_denominator = sum(float(d) for _, d in halves)
    shares = [
        losses.combine({"highlight_loss": (n, d, 5.0)}, lambda _: tf.constant(total_denominator))["loss"]
        for n, d in halves
    ]
    whole = losses.combine({"highlight_loss": (tf.constant(8.0), tf.constant(4.0), 5.0)})["loss"]
    np.testing.assert_allclose(sum(float(s) for s in shares), float(whole), rtol=1e-6)


def test_losses_are_float32_for_float16_logits():
    logits = tf.constant([[0.5, 1.5]], tf.float16)
    span = losses.span_cross_entropy(logits, logits, [0], [1])
    total, _ = losses.weighted_binary_cross_entropy(logits, [[1.0, 0.0]], [[True, True]])
    assert span.dtype == tf.float32 and total.dtype == tf.float32
    assert masking.mask_logits(logits, [[True, False]]).numpy()[0, 1] == masking.MASK_VALUE
