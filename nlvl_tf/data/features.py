"""Visual feature sequences: resampling to at most n positions, and padding with a mask (TF ops).

Resampling follows the authors' `visual_feature_sampling` (docs/model.md 1.5): a sequence of L <= n rows is
kept as is (no upsampling); a longer one is cut into n bins with boundaries
b_i = round(i / n * L) (float64, half-to-even, i = 0..n) and each output row is the mean of its bin.

The authors then clip every boundary to L - 1, so the last bin stops one row early and the last raw
row never enters any mean (L = 10, n = 4: bins {0,1}, {2,3,4}, {5,6,7}, {8}; row 9 is lost). Here the
boundaries are not clipped, so the bins partition [0, L) and every raw row belongs to exactly one
bin (L = 10, n = 4: {0,1}, {2,3,4}, {5,6,7}, {8,9}). `include_last=False` reproduces the original.
"""

import tensorflow as tf


def _check_max_length(max_length):
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive Python int, got {max_length!r}")


def resample(features, max_length, include_last=True):
    """Bin-averages a [L, D] sequence down to n = `max_length` rows when L > n (see module docstring).

    Args:
        features: float tensor [L, D], L >= 1.
        max_length: n, a positive Python int.
        include_last: True: the bins partition all L rows. False: the authors' binning, which drops
            the last raw row.
    Returns:
        float32 [min(L, n), D].
    """
    _check_max_length(max_length)
    features = tf.convert_to_tensor(features, tf.float32)
    num_rows = tf.shape(features)[0]
    return tf.cond(
        num_rows <= max_length,
        lambda: features,
        lambda: _bin_average(features, num_rows, max_length, include_last),
    )


def _bin_boundaries(num_rows, max_length):
    """b_i = round(i / n * L), i = 0..n (float64, half-to-even), for scalar or [B] row counts L -> [..., n + 1]."""
    fractions = tf.range(max_length + 1, dtype=tf.float64) / max_length
    return tf.cast(tf.round(fractions * tf.cast(num_rows, tf.float64)[..., tf.newaxis]), tf.int32)


def _rows_used(num_rows, boundaries, max_length, include_last):
    """Rows that enter a bin: all L, or for the authors' binning the rows before the clipped last boundary."""
    if include_last:
        return num_rows
    # Clipping b_n to L - 1 ends the last bin at L - 1, unless that bin would be empty (b_{n-1} = L - 1), where the
    # authors take the single row b_{n-1}.
    return tf.maximum(num_rows - 1, boundaries[..., max_length - 1] + 1)


def _bin_average(features, num_rows, max_length, include_last):
    """Means of the n bins [b_i, b_i+1) of a sequence longer than n."""
    boundaries = _bin_boundaries(num_rows, max_length)
    used_rows = _rows_used(num_rows, boundaries, max_length, include_last)
    # L > n makes consecutive boundaries at least 1 apart, so every bin is non-empty and the
    # segment ids run over 0..n-1.
    bin_of_row = tf.searchsorted(boundaries[1:max_length], tf.range(used_rows), side="right")
    return tf.math.segment_mean(features[:used_rows], bin_of_row)


def resample_batch(features, lengths, max_length, include_last=True):
    """`resample` and zero-padding to n for a batch of videos at once (the exported model's input), no per-video loop.

    Args:
        features: float [B, T, D]; video b's rows are its first lengths[b] (1 <= lengths[b] <= T), the rest is ignored.
        lengths: int [B].
        max_length: n, a positive Python int.
        include_last: as in `resample`.
    Returns:
        (float32 [B, n, D]: each video resampled to min(L, n) rows, zero after them; int32 [B] those row counts).
    """
    _check_max_length(max_length)
    features = tf.convert_to_tensor(features, tf.float32)
    lengths = tf.cast(lengths, tf.int32)
    num_rows = tf.shape(features)[1]
    new_lengths = tf.minimum(lengths, max_length)

    def short_videos():
        """T <= n: nothing to average; rows past each length are zeroed (whatever they held, NaN included)."""
        kept = tf.where(tf.sequence_mask(lengths, num_rows)[..., tf.newaxis], features, 0.0)
        padded = tf.pad(kept, [[0, 0], [0, max_length - num_rows], [0, 0]])
        return tf.ensure_shape(padded, [None, max_length, features.shape[-1]])

    def bin_averages():
        """Row r of video b goes to bin (b, i): i = r for L <= n, else the bin holding r; unused rows to a spare bin."""
        batch_size = tf.shape(features)[0]
        boundaries = _bin_boundaries(lengths, max_length)
        rows = tf.broadcast_to(tf.range(num_rows), [batch_size, num_rows])
        binned = tf.searchsorted(boundaries[:, 1:max_length], rows, side="right")
        long_video = (lengths > max_length)[:, tf.newaxis]
        bin_of_row = tf.where(long_video, binned, rows)
        used = rows < tf.where(
            long_video, _rows_used(lengths, boundaries, max_length, include_last)[:, tf.newaxis], lengths[:, tf.newaxis]
        )
        num_bins = batch_size * max_length
        segment = tf.where(used, tf.range(batch_size)[:, tf.newaxis] * max_length + bin_of_row, num_bins)
        segment = tf.reshape(segment, [-1])
        sums = tf.math.unsorted_segment_sum(tf.reshape(features, [-1, features.shape[-1]]), segment, num_bins + 1)[
            :num_bins
        ]
        counts = tf.math.unsorted_segment_sum(tf.ones_like(segment, tf.float32), segment, num_bins + 1)[:num_bins]
        means = sums / tf.maximum(counts, 1.0)[:, tf.newaxis]
        return tf.reshape(means, [batch_size, max_length, features.shape[-1]])

    return tf.cond(num_rows <= max_length, short_videos, bin_averages), new_lengths


def pad(features, length):
    """Zero-pads a [N, D] sequence to `length` rows.

    Args:
        features: float tensor [N, D] with N <= length.
        length: target number of rows (Python int or scalar tensor).
    Returns:
        (padded float32 [length, D], mask bool [length], True on the N original rows).
    """
    features = tf.convert_to_tensor(features, tf.float32)
    num_rows = tf.shape(features)[0]
    tf.debugging.assert_less_equal(num_rows, length, message="pad: the sequence has more rows than the padded length")
    padded = tf.pad(features, [[0, length - num_rows], [0, 0]])
    if isinstance(length, int):
        padded = tf.ensure_shape(padded, [length, features.shape[-1]])
    return padded, tf.sequence_mask(num_rows, length)
