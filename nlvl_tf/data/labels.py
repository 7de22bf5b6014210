"""Time <-> index mapping and the per-position training labels of the VSLNet family.

A video of duration T seconds is represented by N feature positions ("units"), unit i covering
[i * T / N, (i + 1) * T / N). Span labels are INCLUSIVE unit indices (start_index, end_index) in
[0, N - 1]. The label functions here are TensorFlow ops: they run eagerly, inside tf.data map
functions and in traced graphs, on one example (scalar inputs) or a batch ([B] inputs).
`index_to_time` also accepts numpy inputs, so decoding, export and evaluation share one inverse map.

References: docs/model.md 1.6 (time -> index), 1.7 (highlight labels), 8.2 item 7 (nil labels).
"""

import math

import numpy as np
import tensorflow as tf

from nlvl_tf import errors

LABEL_METHODS = ("iou_argmax", "round")


def _check_method(method):
    if method not in LABEL_METHODS:
        raise errors.InputError(f"method must be one of {LABEL_METHODS}, got {method!r}")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise errors.InputError(f"{name} must be a positive Python int, got {value!r}")


def time_to_index(start_time, end_time, duration, length, method="iou_argmax"):
    """Maps a moment in seconds to inclusive unit indices (docs/model.md 1.6).

    The moment is first clipped to [0, duration]. Then, with N = `length` units:

    - "iou_argmax" (the authors' code, which produced the paper's numbers): among all candidate spans
      [i, j + 1) of whole units with 0 <= i <= j < N, the one with the largest temporal IoU with the
      moment; ties go to the smallest i, then the smallest j (row-major argmax).
    - "round" (the paper's Eq.: a = Round(tau / T * N), half-to-even): start_index = Round(t_s N / T),
      end_index = Round(t_e N / T) - 1, i.e. the rounded end is an exclusive unit boundary, so that
      `index_to_time` gives back exactly tau = a / N * T. Both indices are clipped to [0, N - 1] and the
      end is raised to the start when rounding leaves it below.

    A moment that is empty after clipping (end <= start: zero length, start > end, or lying entirely
    outside [0, T]) maps to the one-unit span of the unit holding its clipped start,
    (k, k) with k = min(floor(t_s N / T), N - 1) for "iou_argmax" and k = clipped Round(t_s N / T) for
    "round". (The authors' code returns (0, 0) there, every IoU being 0.) Such records are marked
    `moment_valid = False` in the batch and are not trained on.

    Args:
        start_time, end_time: moment in seconds, float, scalar or [B].
        duration: video duration T in seconds (> 0), float, scalar or [B].
        length: number of units N (>= 1), int, scalar or [B].
        method: "iou_argmax" or "round".
    Returns:
        (start_index, end_index): int32 tensors of the broadcast input shape.
    """
    _check_method(method)
    start_time = tf.cast(start_time, tf.float64)
    end_time = tf.cast(end_time, tf.float64)
    duration = tf.cast(duration, tf.float64)
    length = tf.cast(length, tf.int32)
    with tf.control_dependencies(
        [
            tf.debugging.assert_positive(duration, message="time_to_index: duration must be > 0"),
            tf.debugging.assert_positive(length, message="time_to_index: length must be >= 1"),
        ]
    ):
        num_units = tf.cast(length, tf.float64)
    # The moment in unit coordinates, where candidate boundaries are exact integers.
    start = tf.minimum(tf.maximum(start_time, 0.0), duration) * num_units / duration
    end = tf.minimum(tf.maximum(end_time, 0.0), duration) * num_units / duration
    if method == "round":
        start_index = tf.clip_by_value(tf.cast(tf.round(start), tf.int32), 0, length - 1)
        end_index = tf.cast(tf.round(end), tf.int32) - 1
        return start_index, tf.clip_by_value(end_index, start_index, length - 1)
    start_index, end_index = _iou_argmax_span(start, end, length)
    point = tf.minimum(tf.cast(tf.floor(start), tf.int32), length - 1)
    empty = end <= start
    return tf.where(empty, point, start_index), tf.where(empty, point, end_index)


def _iou_argmax_span(start, end, length):
    """Row-major argmax of the IoU between [start, end) and every unit span [i, j + 1), i <= j < N.

    start, end are in unit coordinates; the candidate grid is max(length) x max(length), cells with
    j >= N of their own example are excluded, so a batch of different lengths is handled at once.
    """
    grid = tf.reduce_max(length)
    positions = tf.range(grid, dtype=tf.float64)
    span_start = positions[:, None]  # i
    span_end = positions[None, :] + 1.0  # j + 1, exclusive
    start = start[..., None, None]
    end = end[..., None, None]
    intersection = tf.maximum(tf.minimum(span_end, end) - tf.maximum(span_start, start), 0.0)
    union = tf.maximum(span_end, end) - tf.minimum(span_start, start)
    index = tf.range(grid)
    valid = (index[:, None] <= index[None, :]) & (index[None, :] < length[..., None, None])
    iou = tf.where(valid, tf.math.divide_no_nan(intersection, union), -1.0)
    flat_shape = tf.concat([tf.shape(iou)[:-2], [grid * grid]], axis=0)
    # top_k puts the lower index first among equal values: the row-major tie rule.
    best = tf.math.top_k(tf.reshape(iou, flat_shape), k=1).indices[..., 0]
    return best // grid, best % grid


def index_to_time(start_index, end_index, duration, length, method="iou_argmax"):
    """Maps inclusive unit indices back to seconds: start = s T / N, end = (e + 1) T / N (docs/model.md 1.6).

    Both label methods share this inverse: with the inclusive convention of `time_to_index`, the
    paper's tau = a / N * T (a the rounded boundary, a_e = end_index + 1) is the same formula as the
    authors' code. `method` is accepted (and checked) so callers pass their configured method through.

    Computed in float64 as (index * T) / N, multiplying first: for a decimal duration this gives the double
    nearest the decimal result more often than index * (T / N) does (7 * 10.0 / 100 == 0.7, while 7 * (10.0 / 100)
    == 0.7000000000000001), and float32 would move a boundary by up to 2e-6 s at 30 s, enough to turn an IoU that
    is exactly mu into a miss (docs/metrics.md).

    Indices may carry trailing axes beyond duration/length: [B] or [B, K] indices with [B] (or scalar)
    durations and lengths; duration and length are aligned on the leading axes.

    Returns:
        (start_time, end_time): float64, TensorFlow tensors if any input is one, otherwise numpy arrays, with the
        shape of the indices.
    """
    _check_method(method)
    if any(tf.is_tensor(x) for x in (start_index, end_index, duration, length)):
        start_index, end_index, duration, length = (
            tf.cast(x, tf.float64) for x in (start_index, end_index, duration, length)
        )
    else:
        start_index, end_index, duration, length = (
            np.asarray(x, dtype=np.float64) for x in (start_index, end_index, duration, length)
        )
    rank = len(start_index.shape)
    duration, length = (x[(...,) + (None,) * (rank - len(x.shape))] for x in (duration, length))
    return start_index * duration / length, (end_index + 1.0) * duration / length


def highlight_labels(start_index, end_index, length, max_length, extend=0.1):
    """Query-guided highlighting labels (docs/model.md 1.7): 1 on the moment extended by `extend` of its length.

    ext = Round(extend * (e - s + 1)) with half-to-even rounding in float64 (as Python's round in the
    authors' code, e.g. 0.1 * 25 -> 2, 0.1 * 35 -> 4); ones on [max(0, s - ext), min(e + ext, N - 1)],
    zeros elsewhere and on padding positions >= N. extend = inf marks every valid position.

    Args:
        start_index, end_index: inclusive span labels, int, scalar or [B].
        length: number of valid positions N, int, scalar or [B].
        max_length: padded length n (Python int), the size of the last output axis.
        extend: non-negative Python float (alpha), or math.inf.
    Returns:
        float32 [max_length] for scalar inputs, [B, max_length] for batched ones.
    """
    _check_positive_int("max_length", max_length)
    if not isinstance(extend, (int, float)) or math.isnan(extend) or extend < 0:
        raise errors.InputError(f"extend must be a non-negative float or inf, got {extend!r}")
    start_index = tf.cast(start_index, tf.int32)
    end_index = tf.cast(end_index, tf.int32)
    length = tf.cast(length, tf.int32)
    positions = tf.range(max_length)
    valid = positions < length[..., None]
    if math.isinf(extend):
        return tf.cast(valid, tf.float32)
    span_length = tf.cast(end_index - start_index + 1, tf.float64)
    ext = tf.cast(tf.round(extend * span_length), tf.int32)
    first = tf.maximum(start_index - ext, 0)
    last = tf.minimum(end_index + ext, length - 1)
    inside = (positions >= first[..., None]) & (positions <= last[..., None])
    return tf.cast(inside & valid, tf.float32)


def nil_labels(start_index, end_index, clip_length, num_clips):
    """VSLNet-L nil-prediction labels (docs/model.md 8.2 item 7): 1 iff clip k overlaps the moment.

    Clip k covers padded positions [k l, (k + 1) l - 1]; it is positive iff k l <= e and s <= (k + 1) l - 1,
    so a moment spanning several clips makes every one of them positive, interior clips included.

    Args:
        start_index, end_index: inclusive span labels, int, scalar or [B].
        clip_length: l (Python int); num_clips: K (Python int).
    Returns:
        float32 [num_clips] or [B, num_clips].
    """
    _check_positive_int("clip_length", clip_length)
    _check_positive_int("num_clips", num_clips)
    clip_first = tf.range(num_clips) * clip_length
    clip_last = clip_first + clip_length - 1
    start_index = tf.cast(start_index, tf.int32)[..., None]
    end_index = tf.cast(end_index, tf.int32)[..., None]
    return tf.cast((clip_first <= end_index) & (start_index <= clip_last), tf.float32)


def clip_mask(length, clip_length, num_clips):
    """True for the VSLNet-L clips holding at least one valid position (k l < N), docs/model.md 8.2 item 1.

    Args:
        length: number of valid positions N, int, scalar or [B].
        clip_length: l (Python int); num_clips: K (Python int).
    Returns:
        bool [num_clips] or [B, num_clips].
    """
    _check_positive_int("clip_length", clip_length)
    _check_positive_int("num_clips", num_clips)
    return tf.range(num_clips) * clip_length < tf.cast(length, tf.int32)[..., None]
