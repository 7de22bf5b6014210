"""Visual feature sequences: resampling to at most n positions, and padding with a mask (TF ops).

Resampling follows the authors' `visual_feature_sampling` (spec 1.5): a sequence of L <= n rows is
kept as is (no upsampling); a longer one is cut into n bins with boundaries
b_i = round(i / n * L) (float64, half-to-even, i = 0..n) and each output row is the mean of its bin.

The authors then clip every boundary to L - 1, so the last bin stops one row early and the last raw
row never enters any mean (L = 10, n = 4: bins {0,1}, {2,3,4}, {5,6,7}, {8}; row 9 is lost). Here the
boundaries are not clipped, so the bins partition [0, L) and every raw row belongs to exactly one
bin (L = 10, n = 4: {0,1}, {2,3,4}, {5,6,7}, {8,9}). `include_last=False` reproduces the original.
"""

import tensorflow as tf


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
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive Python int, got {max_length!r}")
    features = tf.convert_to_tensor(features, tf.float32)
    num_rows = tf.shape(features)[0]
    return tf.cond(
        num_rows <= max_length,
        lambda: features,
        lambda: _bin_average(features, num_rows, max_length, include_last),
    )


def _bin_average(features, num_rows, max_length, include_last):
    """Means of the n bins [b_i, b_i+1) of a sequence longer than n."""
    fractions = tf.range(max_length + 1, dtype=tf.float64) / max_length
    boundaries = tf.cast(tf.round(fractions * tf.cast(num_rows, tf.float64)), tf.int32)
    used_rows = num_rows
    if not include_last:
        # Clipping b_n to L - 1 ends the last bin at L - 1, unless that bin would be empty
        # (b_{n-1} = L - 1), where the authors take the single row b_{n-1}.
        used_rows = tf.maximum(num_rows - 1, boundaries[max_length - 1] + 1)
    # L > n makes consecutive boundaries at least 1 apart, so every bin is non-empty and the
    # segment ids run over 0..n-1.
    bin_of_row = tf.searchsorted(boundaries[1:max_length], tf.range(used_rows), side="right")
    return tf.math.segment_mean(features[:used_rows], bin_of_row)


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
    tf.debugging.assert_less_equal(
        num_rows, length, message="pad: the sequence has more rows than the padded length"
    )
    padded = tf.pad(features, [[0, length - num_rows], [0, 0]])
    if isinstance(length, int):
        padded = tf.ensure_shape(padded, [length, features.shape[-1]])
    return padded, tf.sequence_mask(num_rows, length)
