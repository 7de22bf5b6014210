"""Context-query attention, CAT and attention pooling against numpy versions of their equations."""

import numpy as np
import pytest

from nlvl_tf.model.layers import attention
from tests.layers import checks, reference

RNG = np.random.default_rng(1)
VIDEO_LENGTHS, QUERY_LENGTHS = [7, 3], [5, 2]


def _inputs(video_length=7, query_length=5, hidden=8):
    video = RNG.normal(size=(2, video_length, hidden)).astype("float32")
    query = RNG.normal(size=(2, query_length, hidden)).astype("float32")
    return (
        video,
        query,
        checks.lengths_to_mask(VIDEO_LENGTHS, video_length),
        checks.lengths_to_mask(QUERY_LENGTHS, query_length),
    )


def test_context_query_attention_matches_equations_2_and_3():
    video, query, vmask, qmask = _inputs()
    layer = attention.ContextQueryAttention()
    fused, similarity = layer(video, query, vmask, qmask, return_similarity=True)
    np.testing.assert_array_equal(layer(video, query, vmask, qmask), fused)
    want, want_similarity = reference.context_query_attention(
        video.astype("float64"),
        query.astype("float64"),
        vmask,
        qmask,
        layer.video_weight.numpy(),
        layer.query_weight.numpy(),
        layer.product_weight.numpy(),
        layer.output_projection.kernel.numpy(),
    )
    checks.assert_valid_positions_equal(want, fused, VIDEO_LENGTHS)
    np.testing.assert_allclose(similarity, want_similarity, atol=1e-5)


def test_context_query_attention_parameters_match_the_authors_tf_code():
    video, query, vmask, qmask = _inputs(hidden=128)
    layer = attention.ContextQueryAttention()
    layer(video, query, vmask, qmask)
    assert layer.count_params() == 3 * 128 + 4 * 128 * 128  # 65,920; PyTorch port adds a 128 bias
    biased = attention.ContextQueryAttention(use_bias=True)
    biased(video, query, vmask, qmask)
    assert biased.count_params() == layer.count_params() + 128


def test_concat_attention_is_video_with_max_pooled_valid_query():
    video, query, vmask, qmask = _inputs()
    layer = attention.ConcatAttention()
    fused = layer(video, query, vmask, qmask)
    pooled = np.stack([query[b, :n].max(axis=0) for b, n in enumerate(QUERY_LENGTHS)])
    concat = np.concatenate([video, np.broadcast_to(pooled[:, None], video.shape)], axis=-1)
    kernel, bias = [w.numpy() for w in layer.output_projection.weights]
    np.testing.assert_allclose(fused, concat @ kernel + bias, atol=1e-5)


def test_attention_pooling_matches_softmax_weighted_sum():
    _, query, _, qmask = _inputs()
    layer = attention.AttentionPooling()
    got = layer(query, qmask)
    want = reference.attention_pooling(query.astype("float64"), qmask, layer.score_weight.numpy())
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("make", [attention.ContextQueryAttention, attention.ConcatAttention])
def test_padding_video_and_query_to_twice_the_length_changes_no_valid_output(make):
    video, query, vmask, qmask = _inputs()
    layer = make()
    short = layer(video, query, vmask, qmask)
    long = layer(
        checks.pad_with_noise(video, 14),
        checks.pad_with_noise(query, 10, seed=1),
        checks.lengths_to_mask(VIDEO_LENGTHS, 14),
        checks.lengths_to_mask(QUERY_LENGTHS, 10),
    )
    checks.assert_valid_positions_equal(short, long, VIDEO_LENGTHS)


def test_attention_pooling_padding_invariance():
    _, query, _, qmask = _inputs()
    layer = attention.AttentionPooling()
    long = layer(checks.pad_with_noise(query, 10), checks.lengths_to_mask(QUERY_LENGTHS, 10))
    np.testing.assert_allclose(long, layer(query, qmask), atol=1e-6)


@pytest.mark.parametrize(
    "make", [lambda: attention.ContextQueryAttention(dropout=0.1, use_bias=True), attention.ConcatAttention]
)
def test_serialization_round_trip(make):
    inputs = _inputs()
    checks.assert_round_trip(make(), lambda layer: layer(*inputs))


def test_attention_pooling_round_trip():
    _, query, _, qmask = _inputs()
    checks.assert_round_trip(attention.AttentionPooling(), lambda layer: layer(query, qmask))


def test_dropout_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="dropout"):
        attention.ContextQueryAttention(dropout=-0.1)
