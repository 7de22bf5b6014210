"""Span decoding (docs/model.md 4) and VSLNet-L candidate selection (docs/model.md 8.2 item 10).

TensorFlow ops with static shapes and no Python loops over the batch, so they trace once, compile
under XLA and run inside the exported SavedModel. Spans are inclusive index pairs (s, e), s <= e;
`labels.index_to_time` turns them into seconds.

Every ranking uses `tf.math.top_k`, which puts the lower index first among equal values, so ties go
to the lowest start, then the lowest end (the row-major argmax of the authors' outer product; their
code takes the start and end argmaxes separately, which can pair cells from two different maxima).
"""

import tensorflow as tf

from nlvl_tf import errors


def _static_last_axis(name, tensor):
    size = tensor.shape[-1]
    if size is None:
        raise errors.InputError(f"{name} needs a static last axis, got shape {tensor.shape}")
    return size


def _flatten_pairs(table):
    """[..., m, m] -> [..., m * m], row-major, so a flat index i * m + j orders pairs (i, j)."""
    m = table.shape[-1]
    return tf.reshape(table, tf.concat([tf.shape(table)[:-2], [m * m]], axis=0))


def _span_table(start_probs, end_probs, mask):
    """[..., n, n] joint probabilities P_s(s) P_e(e); -1 where s > e or s / e is a masked position."""
    start_probs = tf.convert_to_tensor(start_probs, tf.float32)
    end_probs = tf.convert_to_tensor(end_probs, tf.float32)
    mask = tf.convert_to_tensor(mask, tf.bool)
    index = tf.range(_static_last_axis("start_probs", start_probs))
    ordered = index[:, None] <= index[None, :]
    valid = ordered & mask[..., :, None] & mask[..., None, :]
    return tf.where(valid, start_probs[..., :, None] * end_probs[..., None, :], -1.0)


def top_k_spans(start_probs, end_probs, mask, k):
    """The k most probable distinct spans s <= e over valid positions, best first.

    Args:
        start_probs, end_probs: float32 [..., n] probabilities (softmax of masked logits); leading axes
            are [B] or [B, S] (VSLNet-L scales).
        mask: bool [..., n], true on the N valid positions.
        k: number of spans (Python int, <= n * n).
    Returns:
        (start_index int32, end_index int32, score float32), each [..., k], score = P_s(s) P_e(e) in
        descending order. When fewer than k valid spans exist (N (N + 1) / 2 < k), the missing entries
        are padding: score 0 and the span of entry 0 repeated (so they never change a Rank@k result).
        A row without any valid position gives span (0, 0) with score 0 everywhere.
    """
    table = _span_table(start_probs, end_probs, mask)
    n = table.shape[-1]
    if not isinstance(k, int) or not 1 <= k <= n * n:
        raise errors.InputError(f"k must be an int in [1, n * n = {n * n}], got {k!r}")
    score, cell = tf.math.top_k(_flatten_pairs(table), k=k)
    real = score >= 0.0
    cell = tf.where(real, cell, cell[..., :1])
    return cell // n, cell % n, tf.where(real, score, 0.0)


def best_span(start_probs, end_probs, mask):
    """The most probable span s <= e (docs/model.md 4): `top_k_spans` with k = 1, without the k axis.

    Returns:
        (start_index int32, end_index int32, joint_prob float32), each shaped like the leading axes
        ([B] or [B, S]); joint_prob = max P_s(s) P_e(e) is the VSLNet-L Pm score.
    """
    start, end, score = top_k_spans(start_probs, end_probs, mask, k=1)
    return start[..., 0], end[..., 0], score[..., 0]


def _gather_scale(values, scale):
    """values [..., S] at scale [...] -> [...]."""
    return tf.gather(values, scale[..., None], batch_dims=len(scale.shape))[..., 0]


def _most_probable_scale(scores):
    """[B, S] joint probabilities -> [B] index of the largest, ties -> the first scale (Pm)."""
    return tf.math.top_k(scores, k=1).indices[..., 0]


def most_probable_scale(start_probs, end_probs, mask):
    """VSLNet-L: [B] index of the scale whose best span is most probable (the scale Pm ranks), ties -> the first.

    Args:
        start_probs, end_probs: float32 [B, S, n]; mask: bool, broadcastable to them.
    """
    _, _, scores = best_span(start_probs, end_probs, mask)
    return _most_probable_scale(scores)


def select_max_probability(starts, ends, scores):
    """VSLNet-L Pm: the scale candidate with the largest joint probability, ties -> the first scale.

    Args:
        starts, ends: int [B, S] per-scale best spans; scores: float32 [B, S] their joint probabilities.
    Returns:
        (start_index int32, end_index int32, score float32), each [B].
    """
    scores = tf.convert_to_tensor(scores, tf.float32)
    scale = _most_probable_scale(scores)
    start = _gather_scale(tf.cast(starts, tf.int32), scale)
    return start, _gather_scale(tf.cast(ends, tf.int32), scale), _gather_scale(scores, scale)


def select_union(starts, ends, scores):
    """VSLNet-L U: the union of the two scale candidates that overlap most (docs/model.md 8.2 item 10).

    Overlap is the IoU of [s, e + 1) in the index domain; ties go to the pair with the larger product
    of joint probabilities, then to the first pair (i < j, row-major). Output span [min s, max e] with
    score max(P_i, P_j); with a single scale, the candidate itself.

    Args:
        starts, ends: int [B, S]; scores: float32 [B, S]. S must be static.
    Returns:
        (start_index int32, end_index int32, score float32), each [B].
    """
    starts = tf.cast(starts, tf.int32)
    ends = tf.cast(ends, tf.int32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    num_scales = _static_last_axis("scores", scores)
    if num_scales == 1:
        return starts[..., 0], ends[..., 0], scores[..., 0]
    s_i, s_j = starts[..., :, None], starts[..., None, :]
    e_i, e_j = ends[..., :, None] + 1, ends[..., None, :] + 1
    intersection = tf.maximum(tf.minimum(e_i, e_j) - tf.maximum(s_i, s_j), 0)
    union = tf.maximum(e_i, e_j) - tf.minimum(s_i, s_j)
    iou = tf.math.divide_no_nan(tf.cast(intersection, tf.float32), tf.cast(union, tf.float32))
    index = tf.range(num_scales)
    iou = _flatten_pairs(tf.where(index[:, None] < index[None, :], iou, -1.0))
    product = _flatten_pairs(scores[..., :, None] * scores[..., None, :])
    most_overlap = iou == tf.reduce_max(iou, axis=-1, keepdims=True)
    pair = tf.math.top_k(tf.where(most_overlap, product, -1.0), k=1).indices[..., 0]
    first, second = pair // num_scales, pair % num_scales
    start = tf.minimum(_gather_scale(starts, first), _gather_scale(starts, second))
    end = tf.maximum(_gather_scale(ends, first), _gather_scale(ends, second))
    score = tf.maximum(_gather_scale(scores, first), _gather_scale(scores, second))
    return start, end, score


SELECTIONS = ("pm", "u")


def ranked_spans(outputs, video_length, k, selection="pm"):
    """Model outputs -> the k best spans per query, as evaluation and the exported model rank them.

    VSLNet/VSLBase: the k most probable spans. VSLNet-L: Pm ranks the k best spans of the scale whose best span is
    most probable; U puts the union of the two most overlapping scale candidates first, followed by Pm's k - 1 best.

    Args:
        outputs: the model's dict of masked logits ([B, n], or [B, S, n] for VSLNet-L).
        video_length: int [B], valid positions per video.
        k: spans per query; selection: "pm" or "u" (VSLNet-L only).
    Returns:
        (start_index, end_index, score), each [B, k].
    """
    if selection not in SELECTIONS:
        raise errors.InputError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    start_probs = tf.nn.softmax(outputs["start_logits"], axis=-1)
    end_probs = tf.nn.softmax(outputs["end_logits"], axis=-1)
    mask = tf.sequence_mask(video_length, tf.shape(start_probs)[-1])
    if start_probs.shape.rank == 2:
        return top_k_spans(start_probs, end_probs, mask, k)
    starts, ends, scores = top_k_spans(start_probs, end_probs, mask[:, tf.newaxis], k)
    scale = _most_probable_scale(scores[..., 0])
    ranked = tuple(tf.gather(values, scale, batch_dims=1) for values in (starts, ends, scores))
    if selection == "pm":
        return ranked
    union = select_union(starts[..., 0], ends[..., 0], scores[..., 0])
    return tuple(tf.concat([first[:, tf.newaxis], rest[:, : k - 1]], axis=1) for first, rest in zip(union, ranked))
