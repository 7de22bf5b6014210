"""Tests of nlvl_tf.decoding against brute-force enumeration of all (start, end) pairs."""

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.eval import decoding


def brute_force_ranking(start_probs, end_probs, length):
    """Every valid (score, s, e) with s <= e < length, best first; ties -> lower s, then lower e.

    Scores are float32 products, the quantity the decoder ranks, so equal-score ties are exact.
    """
    spans = [
        (np.float32(start_probs[s]) * np.float32(end_probs[e]), s, e) for s in range(length) for e in range(s, length)
    ]
    return sorted(spans, key=lambda span: (-span[0], span[1], span[2]))


def random_tables(seed, batch, n, with_ties):
    """Probability tables [batch, n] and lengths; with_ties draws from a few values so ties abound."""
    rng = np.random.default_rng(seed)
    length = rng.integers(1, n + 1, batch)
    if with_ties:
        start_probs = rng.choice([0.0, 0.25, 0.5], size=(batch, n))
        end_probs = rng.choice([0.0, 0.25, 0.5], size=(batch, n))
    else:
        start_probs = rng.dirichlet(np.ones(n), size=batch)
        end_probs = rng.dirichlet(np.ones(n), size=batch)
    mask = np.arange(n) < length[:, None]
    return start_probs.astype(np.float32), end_probs.astype(np.float32), mask, length


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 4), n=st.integers(1, 12), with_ties=st.booleans()
)
def test_best_span_equals_brute_force(seed, batch, n, with_ties):
    start_probs, end_probs, mask, length = random_tables(seed, batch, n, with_ties)
    start, end, score = (x.numpy() for x in decoding.best_span(start_probs, end_probs, mask))
    for b in range(batch):
        want_score, want_start, want_end = brute_force_ranking(start_probs[b], end_probs[b], length[b])[0]
        assert (start[b], end[b], score[b]) == (want_start, want_end, want_score)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 8),
    k=st.integers(1, 12),
    with_ties=st.booleans(),
)
def test_top_k_spans_equal_sorted_brute_force_with_recognisable_padding(seed, n, k, with_ties):
    hypothesis.assume(k <= n * n)
    start_probs, end_probs, mask, length = random_tables(seed, 3, n, with_ties)
    start, end, score = (x.numpy() for x in decoding.top_k_spans(start_probs, end_probs, mask, k))
    for b in range(3):
        ranking = brute_force_ranking(start_probs[b], end_probs[b], length[b])[:k]
        real = len(ranking)
        assert [(score[b, i], start[b, i], end[b, i]) for i in range(real)] == ranking
        assert len(set(zip(start[b, :real], end[b, :real]))) == real  # distinct spans
        assert np.all(np.diff(score[b]) <= 0)  # descending
        np.testing.assert_array_equal(score[b, real:], 0.0)
        np.testing.assert_array_equal(start[b, real:], ranking[0][1])
        np.testing.assert_array_equal(end[b, real:], ranking[0][2])


def test_best_span_breaks_ties_by_lowest_start_then_lowest_end():
    # Valid maxima 0.25 at (0, 1) and (1, 1); the larger products sit at s > e (2, 1) and on padding.
    start_probs = [[0.5, 0.5, 0.9, 0.1, 0.9]]
    end_probs = [[0.1, 0.5, 0.1, 0.25, 0.9]]
    mask = [[True, True, True, True, False]]
    start, end, score = decoding.best_span(start_probs, end_probs, mask)
    assert (int(start[0]), int(end[0]), float(score[0])) == (0, 1, 0.25)
    start, end, score = decoding.top_k_spans(start_probs, end_probs, mask, k=5)
    np.testing.assert_array_equal(start.numpy(), [[0, 1, 2, 0, 1]])
    np.testing.assert_array_equal(end.numpy(), [[1, 1, 3, 3, 3]])
    np.testing.assert_array_equal(score.numpy(), [np.float32([0.25, 0.25, 0.9 * 0.25, 0.125, 0.125])])


def test_scale_axis_gives_the_same_spans_as_each_scale_alone():
    start_probs, end_probs, mask, _ = random_tables(5, 6, 10, with_ties=True)
    shape = (2, 3, 10)
    stacked = decoding.top_k_spans(start_probs.reshape(shape), end_probs.reshape(shape), mask.reshape(shape), k=3)
    flat = decoding.top_k_spans(start_probs, end_probs, mask, k=3)
    for got, want in zip(stacked, flat):
        assert got.shape == (2, 3, 3)
        np.testing.assert_array_equal(got.numpy().reshape(6, 3), want.numpy())


def test_decoding_under_xla_matches_eager():
    start_probs, end_probs, mask, _ = random_tables(6, 4, 16, with_ties=True)

    @tf.function(jit_compile=True)
    def decode(start_probs, end_probs, mask):
        return decoding.top_k_spans(start_probs, end_probs, mask, k=5), decoding.best_span(start_probs, end_probs, mask)

    compiled = decode(start_probs, end_probs, mask)
    eager = (decoding.top_k_spans(start_probs, end_probs, mask, k=5), decoding.best_span(start_probs, end_probs, mask))
    for got, want in zip(tf.nest.flatten(compiled), tf.nest.flatten(eager)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_top_k_spans_rejects_k_beyond_the_table():
    with pytest.raises(ValueError, match="k must be"):
        decoding.top_k_spans([[0.5, 0.5]], [[0.5, 0.5]], [[True, True]], k=5)


# ---------------------------------------------------------------- VSLNet-L selection


def test_select_max_probability_takes_the_first_most_probable_scale():
    starts = [[1, 4, 2], [7, 3, 5]]
    ends = [[3, 6, 2], [9, 4, 8]]
    scores = [[0.2, 0.5, 0.5], [0.3, 0.1, 0.2]]
    start, end, score = decoding.select_max_probability(starts, ends, scores)
    np.testing.assert_array_equal(start.numpy(), [4, 7])
    np.testing.assert_array_equal(end.numpy(), [6, 9])
    np.testing.assert_array_equal(score.numpy(), np.float32([0.5, 0.3]))


@pytest.mark.parametrize(
    "starts, ends, scores, expected",
    [
        # [2, 6) and [3, 7) overlap with IoU 3/5; the third candidate overlaps neither.
        ([2, 3, 10], [5, 6, 12], [0.1, 0.2, 0.9], (2, 6, 0.2)),
        # Pairs (0, 1) and (1, 2) both have IoU 1/3: the larger score product wins...
        ([0, 2, 4], [3, 5, 7], [0.1, 0.3, 0.5], (2, 7, 0.5)),
        ([0, 2, 4], [3, 5, 7], [0.5, 0.3, 0.1], (0, 5, 0.5)),
        # ... and with equal products the first pair.
        ([0, 2, 4], [3, 5, 7], [0.25, 0.5, 0.25], (0, 5, 0.5)),
        # No overlap at all: every IoU is 0, the most probable pair is merged.
        ([0, 4, 8], [1, 5, 9], [0.5, 0.25, 0.75], (0, 9, 0.75)),
    ],
)
def test_select_union_merges_the_most_overlapping_pair(starts, ends, scores, expected):
    start, end, score = decoding.select_union([starts], [ends], [scores])
    assert (int(start[0]), int(end[0]), float(score[0])) == pytest.approx(expected)


def test_select_union_batches_rows_independently_and_keeps_a_single_scale():
    start, end, _ = decoding.select_union([[2, 3, 10], [0, 4, 8]], [[5, 6, 12], [1, 5, 9]], [[0.1, 0.2, 0.9]] * 2)
    np.testing.assert_array_equal(start.numpy(), [2, 4])  # row 1: no overlap, most probable pair (1, 2)
    np.testing.assert_array_equal(end.numpy(), [6, 9])
    start, end, score = decoding.select_union([[4], [1]], [[6], [3]], [[0.3], [0.7]])
    np.testing.assert_array_equal(start.numpy(), [4, 1])
    np.testing.assert_array_equal(end.numpy(), [6, 3])
    np.testing.assert_array_equal(score.numpy(), np.float32([0.3, 0.7]))
