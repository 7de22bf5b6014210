"""Tests of nlvl_tf.labels against brute-force numpy references and hand-worked cases."""

import math

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.data import labels


def interval_iou(a_start, a_end, b_start, b_end):
    return max(0.0, min(a_end, b_end) - max(a_start, b_start)) / (max(a_end, b_end) - min(a_start, b_start))


def brute_force_iou_argmax(start_time, end_time, duration, length):
    """Spec 1.6 by a plain double loop in seconds: best IoU of [i u, (j + 1) u) with the clipped moment.

    Returns (start_index, end_index, best_iou, runner_up_iou) so callers can tell a clear winner.
    """
    start = min(max(start_time, 0.0), duration)
    end = min(max(end_time, 0.0), duration)
    unit = duration / length
    scored = []
    for i in range(length):
        for j in range(i, length):
            scored.append((interval_iou(i * unit, (j + 1) * unit, start, end), i, j))
    best = max(scored, key=lambda item: (item[0], -item[1], -item[2]))
    runner_up = max(item[0] for item in scored if item is not best) if len(scored) > 1 else -1.0
    return best[1], best[2], best[0], runner_up


def to_numpy(pair):
    return tuple(np.asarray(x) for x in pair)


# ---------------------------------------------------------------- time_to_index, IoU argmax


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (2.0, 6.0, (1, 2)),  # exactly units 1..2 (T = 8, N = 4, unit 2 s)
        (0.0, 8.0, (0, 3)),  # the whole video: start at 0, end at the duration
        (3.0, 5.0, (1, 2)),  # half units 1 and 2: [2, 6) has IoU 1/2 > 1/3 for either unit
        (6.0, 12.0, (3, 3)),  # ends past the duration: clipped to [6, 8]
        (-2.0, 2.0, (0, 0)),  # starts before 0: clipped to [0, 2]
        (0.5, 1.0, (0, 0)),
    ],
)
def test_time_to_index_worked_examples(start, end, expected):
    assert to_numpy(labels.time_to_index(start, end, 8.0, 4)) == expected
    assert brute_force_iou_argmax(start, end, 8.0, 4)[:2] == expected


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (5.0, 5.0, (2, 2)),  # zero length inside unit 2
        (4.0, 4.0, (2, 2)),  # zero length on the boundary of units 1 and 2: the unit starting there
        (8.0, 8.0, (3, 3)),  # zero length at the duration: the last unit
        (6.0, 2.0, (3, 3)),  # start > end: the unit holding the start
        (9.0, 12.0, (3, 3)),  # entirely after the video: clipped to [8, 8]
        (-3.0, -1.0, (0, 0)),  # entirely before the video: clipped to [0, 0]
    ],
)
def test_time_to_index_empty_moments_map_to_the_unit_holding_the_start(start, end, expected):
    assert to_numpy(labels.time_to_index(start, end, 8.0, 4)) == expected


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(
    duration=st.floats(1.0, 1000.0),
    length=st.integers(1, 24),
    start_fraction=st.floats(-0.2, 1.2),
    end_fraction=st.floats(-0.2, 1.2),
)
def test_time_to_index_matches_brute_force(duration, length, start_fraction, end_fraction):
    start, end = start_fraction * duration, end_fraction * duration
    clipped_start, clipped_end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
    hypothesis.assume(clipped_end - clipped_start > 1e-6 * duration)
    got_start, got_end = to_numpy(labels.time_to_index(start, end, duration, length))
    want_start, want_end, best_iou, runner_up = brute_force_iou_argmax(start, end, duration, length)
    unit = duration / length
    got_iou = interval_iou(got_start * unit, (got_end + 1) * unit, clipped_start, clipped_end)
    assert got_iou == pytest.approx(best_iou, abs=1e-9)
    if best_iou - runner_up > 1e-9:
        assert (got_start, got_end) == (want_start, want_end)


def test_time_to_index_batch_with_different_lengths_matches_brute_force():
    rng = np.random.default_rng(0)
    size = 200
    duration = rng.uniform(5.0, 200.0, size)
    length = rng.integers(1, 30, size)
    start = rng.uniform(-0.05, 0.9, size) * duration  # some start before 0
    end = start + rng.uniform(0.06, 0.6, size) * duration  # some end past the duration
    got_start, got_end = to_numpy(labels.time_to_index(start, end, duration, length))
    for b in range(size):
        want_start, want_end, best_iou, runner_up = brute_force_iou_argmax(start[b], end[b], duration[b], length[b])
        assert best_iou - runner_up > 1e-9, "random moments have a unique best span"
        assert (got_start[b], got_end[b]) == (want_start, want_end), b


def test_time_to_index_mostly_agrees_with_rounding_the_boundaries():
    """Spec 1.6: the IoU argmax equals (round(t_s / u), round(t_e / u) - 1) in ~95% of cases."""
    rng = np.random.default_rng(1)
    size, length = 2000, 32
    duration = rng.uniform(20.0, 40.0, size)
    start = rng.uniform(0.0, 0.8, size) * duration
    end = np.minimum(start + rng.uniform(0.05, 0.5, size) * duration, duration)
    got_start, got_end = to_numpy(labels.time_to_index(start, end, duration, length))
    unit = duration / length
    agree = (got_start == np.round(start / unit)) & (got_end == np.round(end / unit) - 1)
    assert 0.9 < agree.mean() < 1.0


def test_time_to_index_runs_inside_tf_data_map():
    moments = {"start": [3.0, 5.0, 0.0], "end": [5.0, 5.0, 8.0], "duration": [8.0] * 3, "length": [4] * 3}
    dataset = tf.data.Dataset.from_tensor_slices(moments).map(
        lambda m: labels.time_to_index(m["start"], m["end"], m["duration"], m["length"])
    )
    assert [tuple(int(x) for x in pair) for pair in dataset.as_numpy_iterator()] == [(1, 2), (2, 2), (0, 3)]


def test_time_to_index_rejects_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        labels.time_to_index(1.0, 2.0, 8.0, 4, method="nearest")
    with pytest.raises(tf.errors.InvalidArgumentError, match="duration"):
        labels.time_to_index(1.0, 2.0, 0.0, 4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="length"):
        labels.time_to_index(1.0, 2.0, 8.0, 0)


# ---------------------------------------------------------------- time_to_index, paper rounding


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (2.0, 6.0, (1, 2)),
        (3.0, 5.0, (2, 2)),  # Round(1.5) = 2 and Round(2.5) - 1 = 1 (half-to-even): end raised to start
        (1.0, 7.0, (0, 3)),  # Round(0.5) = 0, Round(3.5) - 1 = 3
        (5.0, 11.0, (2, 3)),  # clipped end 8 -> Round(4) - 1 = 3
        (5.0, 5.0, (2, 2)),  # zero length: one unit at Round(2.5) = 2
    ],
)
def test_time_to_index_round_worked_examples(start, end, expected):
    assert to_numpy(labels.time_to_index(start, end, 8.0, 4, method="round")) == expected


def test_time_to_index_round_matches_numpy_formula():
    rng = np.random.default_rng(2)
    duration = rng.uniform(5.0, 100.0, 500)
    length = rng.integers(1, 64, 500)
    start = rng.uniform(0.0, 0.7, 500) * duration
    end = start + rng.uniform(0.01, 0.3, 500) * duration
    want_start = np.clip(np.round(start * length / duration), 0, length - 1)
    want_end = np.clip(np.round(end * length / duration) - 1, want_start, length - 1)
    got_start, got_end = to_numpy(labels.time_to_index(start, end, duration, length, method="round"))
    np.testing.assert_array_equal(got_start, want_start)
    np.testing.assert_array_equal(got_end, want_end)


# ---------------------------------------------------------------- index_to_time


@pytest.mark.parametrize("method", labels.LABEL_METHODS)
def test_index_to_time_is_inverted_by_time_to_index_for_every_span(method):
    duration, length = 13.0, 7  # a unit of 13/7 s is not exact in binary
    start, end = np.triu_indices(length)
    start_time, end_time = labels.index_to_time(start, end, duration, length, method=method)
    np.testing.assert_allclose(start_time, start * duration / length)
    np.testing.assert_allclose(end_time, (end + 1) * duration / length)
    got = to_numpy(labels.time_to_index(start_time, end_time, duration, length, method=method))
    np.testing.assert_array_equal(got[0], start)
    np.testing.assert_array_equal(got[1], end)


def test_index_to_time_aligns_batch_axis_of_ranked_indices():
    start = np.array([[0, 2, 1], [3, 0, 1]])
    end = np.array([[1, 2, 3], [3, 4, 1]])
    duration = np.array([8.0, 30.0])
    length = np.array([4, 6])
    start_time, end_time = labels.index_to_time(start, end, duration, length)
    assert start_time.dtype == np.float64
    np.testing.assert_array_equal(start_time, [[0.0, 4.0, 2.0], [15.0, 0.0, 5.0]])
    np.testing.assert_array_equal(end_time, [[4.0, 6.0, 8.0], [20.0, 25.0, 10.0]])
    tf_start, tf_end = labels.index_to_time(tf.constant(start), end, tf.constant(duration), length)
    assert tf_start.dtype == tf.float64
    np.testing.assert_array_equal(tf_start.numpy(), start_time)
    np.testing.assert_array_equal(tf_end.numpy(), end_time)


# ---------------------------------------------------------------- highlight labels


def numpy_highlight(start, end, length, max_length, extend):
    """Spec 1.7 as the authors wrote it, with Python's round (half-to-even)."""
    out = np.zeros(max_length, np.float32)
    if math.isinf(extend):
        out[:length] = 1.0
        return out
    ext = round(extend * (end - start + 1))
    out[max(0, start - ext) : min(end + ext, length - 1) + 1] = 1.0
    return out


@pytest.mark.parametrize(
    "start, end, length, extend, first, last",
    [
        (10, 14, 40, 0.1, 10, 14),  # 0.1 * 5 = 0.5 -> 0: no extension
        (10, 24, 40, 0.1, 8, 26),  # 0.1 * 15 -> 2
        (3, 27, 40, 0.1, 1, 29),  # 0.1 * 25 = 2.5 -> 2 (half-to-even; half-up would give 3)
        (5, 39, 40, 0.1, 1, 39),  # 0.1 * 35 = 3.5 -> 4, clipped at N - 1
        (0, 24, 26, 0.1, 0, 25),  # clipped at 0 and at N - 1 = 25
        (4, 6, 40, 0.0, 4, 6),
        (4, 6, 40, math.inf, 0, 39),  # alpha = inf: every valid position
    ],
)
def test_highlight_labels_worked_examples(start, end, length, extend, first, last):
    want = np.zeros(48, np.float32)
    want[first : last + 1] = 1.0
    got = labels.highlight_labels(start, end, length, 48, extend=extend).numpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(numpy_highlight(start, end, length, 48, extend), want)


def test_highlight_labels_batch_matches_numpy():
    rng = np.random.default_rng(3)
    length = rng.integers(1, 64, 300)
    start = rng.integers(0, length)
    end = rng.integers(start, length)
    for extend in (0.05, 0.1, 0.2, math.inf):
        got = labels.highlight_labels(start, end, length, 64, extend=extend).numpy()
        want = np.stack([numpy_highlight(s, e, n, 64, extend) for s, e, n in zip(start, end, length)])
        np.testing.assert_array_equal(got, want)


def test_highlight_labels_rejects_bad_arguments():
    with pytest.raises(ValueError, match="extend"):
        labels.highlight_labels(0, 1, 4, 8, extend=-0.1)
    with pytest.raises(ValueError, match="max_length"):
        labels.highlight_labels(0, 1, 4, 0)


# ---------------------------------------------------------------- nil labels and clip mask


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (2, 9, [1, 1, 1]),  # spans three clips: the interior clip 1 is positive too
        (5, 6, [0, 1, 0]),
        (3, 4, [1, 1, 0]),  # the last position of clip 0 and the first of clip 1
        (8, 8, [0, 0, 1]),
        (0, 0, [1, 0, 0]),
    ],
)
def test_nil_labels_worked_examples(start, end, expected):
    np.testing.assert_array_equal(labels.nil_labels(start, end, clip_length=4, num_clips=3).numpy(), expected)


def test_nil_labels_batch_matches_position_sets():
    rng = np.random.default_rng(4)
    start = rng.integers(0, 60, 200)
    end = rng.integers(start, 60)
    got = labels.nil_labels(start, end, clip_length=15, num_clips=4).numpy()
    for b in range(200):
        moment = set(range(start[b], end[b] + 1))
        want = [float(bool(moment & set(range(k * 15, (k + 1) * 15)))) for k in range(4)]
        np.testing.assert_array_equal(got[b], want)


def test_clip_mask_marks_clips_with_a_valid_position():
    got = labels.clip_mask([4, 5, 12, 1], clip_length=4, num_clips=3).numpy()
    np.testing.assert_array_equal(
        got,
        [
            [True, False, False],  # clip 1 is all padding
            [True, True, False],  # one valid position is enough
            [True, True, True],
            [True, False, False],
        ],
    )
    with pytest.raises(ValueError, match="clip_length"):
        labels.clip_mask(4, clip_length=0, num_clips=3)
