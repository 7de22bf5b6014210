"""Localization metrics: temporal IoU, Rank@k at IoU thresholds, mIoU, and the same per video length.

Pure numpy in float64 (no TensorFlow), so evaluation files can be scored anywhere. Definitions follow
docs/model.md 6: IoU in seconds; Rank@k, IoU=mu is the percentage of queries for which any of the
top-k predictions has IoU >= mu (the authors' code; `strict=True` gives the paper's "larger than");
mIoU = 100 * mean IoU of the top-1 prediction. Length bins are those of the paper's Tables 5 and 6.
"""

import numpy as np

from nlvl_tf import errors

DEFAULT_KS = (1, 5)
DEFAULT_THRESHOLDS = (0.3, 0.5, 0.7)
LENGTH_BIN_EDGES_MINUTES = (2, 4, 6, 8, 10, 12)


def metric_key(k, threshold):
    """Name of the Rank@k, IoU=threshold entry, e.g. metric_key(1, 0.5) == "R1@0.5"."""
    return f"R{k}@{threshold:g}"


def temporal_iou(pred, gt):
    """IoU of time intervals [start, end] in seconds, broadcast over leading axes.

    IoU = max(0, min(ends) - max(starts)) / (max(ends) - min(starts)); 0 when that union is not
    positive (e.g. two identical zero-length intervals), never NaN.

    Args:
        pred, gt: array-likes [..., 2] of (start, end).
    Returns:
        float64 array of the broadcast leading shape.
    """
    pred = _intervals("pred", pred)
    gt = _intervals("gt", gt)
    intersection = np.minimum(pred[..., 1], gt[..., 1]) - np.maximum(pred[..., 0], gt[..., 0])
    union = np.maximum(pred[..., 1], gt[..., 1]) - np.minimum(pred[..., 0], gt[..., 0])
    positive = union > 0
    return np.where(positive, np.maximum(intersection, 0.0) / np.where(positive, union, 1.0), 0.0)


def _intervals(name, value):
    value = np.asarray(value, dtype=np.float64)
    if value.ndim < 1 or value.shape[-1] != 2:
        raise errors.InputError(f"{name} must have a last axis of size 2 (start, end), got shape {value.shape}")
    return value


def _ranked_ious(predictions, ground_truth):
    """IoU [Q, K] of every ranked prediction [Q, K, 2] with its query's ground truth [Q, 2]."""
    predictions = _intervals("predictions", predictions)
    ground_truth = _intervals("ground_truth", ground_truth)
    if predictions.ndim != 3 or ground_truth.ndim != 2 or len(predictions) != len(ground_truth):
        raise errors.InputError(
            "predictions must be [Q, K, 2] and ground_truth [Q, 2] for the same Q, got shapes "
            f"{predictions.shape} and {ground_truth.shape}"
        )
    if len(predictions) == 0:
        raise errors.InputError("no queries to evaluate: predictions and ground_truth are empty")
    return temporal_iou(predictions, ground_truth[:, None, :])


def _rank_from_ious(ious, ks, thresholds, strict):
    results = {}
    for k in ks:
        if not 1 <= k <= ious.shape[1]:
            raise errors.InputError(f"Rank@{k} needs k in [1, K]; predictions hold K = {ious.shape[1]} spans per query")
        best = ious[:, :k].max(axis=1)
        for threshold in thresholds:
            hits = best > threshold if strict else best >= threshold
            results[metric_key(k, threshold)] = 100.0 * float(np.mean(hits))
    return results


def rank_at_k(predictions, ground_truth, ks=DEFAULT_KS, thresholds=DEFAULT_THRESHOLDS, strict=False):
    """Rank@k, IoU=mu in percent for every k in ks and mu in thresholds.

    Args:
        predictions: [Q, K, 2] ranked (start, end) seconds per query, best first, K >= max(ks).
        ground_truth: [Q, 2] (start, end) seconds.
        strict: count IoU > mu instead of IoU >= mu.
    Returns:
        {"R1@0.3": ..., "R1@0.5": ..., ...} (see `metric_key`).
    """
    return _rank_from_ious(_ranked_ious(predictions, ground_truth), ks, thresholds, strict)


def _mean_top1(ious):
    return 100.0 * float(np.mean(ious[:, 0]))


def mean_iou(predictions, ground_truth):
    """mIoU in percent: 100 * mean IoU of the top-1 predictions [Q, K, 2] with ground_truth [Q, 2]."""
    return _mean_top1(_ranked_ious(predictions, ground_truth))


def evaluate(predictions, ground_truth, ks=DEFAULT_KS, thresholds=DEFAULT_THRESHOLDS, strict=False):
    """All metrics of one evaluation: the `rank_at_k` entries plus "mIoU", in percent."""
    ious = _ranked_ious(predictions, ground_truth)
    return {**_rank_from_ious(ious, ks, thresholds, strict), "mIoU": _mean_top1(ious)}


def by_video_length(
    durations,
    video_ids,
    predictions,
    ground_truth,
    ks=DEFAULT_KS,
    thresholds=DEFAULT_THRESHOLDS,
    strict=False,
    edges_minutes=LENGTH_BIN_EDGES_MINUTES,
):
    """`evaluate` per video-length bin (paper Tables 5 and 6: 0-2, 2-4, ..., 10-12, >12 minutes).

    Bins are right-inclusive: a video of exactly 120 s is in "0-2 min", one of 120.5 s in "2-4 min".

    Args:
        durations: [Q] duration in seconds of each query's video.
        video_ids: [Q] video id of each query (to count distinct videos per bin).
        predictions, ground_truth, ks, thresholds, strict: as in `evaluate`.
        edges_minutes: increasing inner bin edges in minutes.
    Returns:
        A list, in bin order, of {"bin": "0-2 min", "low_seconds": 0.0, "high_seconds": 120.0,
        "videos": int, "queries": int, "metrics": evaluate(...) of the bin's queries, or None when the
        bin has no query}. The last bin has "high_seconds": None (unbounded).
    """
    durations = np.asarray(durations, dtype=np.float64)
    video_ids = np.asarray(video_ids)
    predictions = np.asarray(predictions, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if durations.ndim != 1 or durations.shape != video_ids.shape or len(durations) != len(predictions):
        raise errors.InputError(
            "durations and video_ids must be [Q] with Q = len(predictions), got shapes "
            f"{durations.shape}, {video_ids.shape} and predictions {predictions.shape}"
        )
    if not np.all(np.isfinite(durations)) or np.any(durations < 0):
        raise errors.InputError(f"durations must be finite and >= 0 seconds, got min {durations.min(initial=0.0)}")
    edges = [60.0 * float(edge) for edge in edges_minutes]
    if any(high <= low for low, high in zip(edges, edges[1:])) or (edges and edges[0] <= 0):
        raise errors.InputError(f"edges_minutes must be positive and increasing, got {edges_minutes}")
    bin_of_query = np.searchsorted(edges, durations, side="left")
    lows = [0.0] + edges
    highs = edges + [None]
    report = []
    for index, (low, high) in enumerate(zip(lows, highs)):
        label = f"{low / 60:g}-{high / 60:g} min" if high is not None else f">{low / 60:g} min"
        selected = bin_of_query == index
        queries = int(selected.sum())
        report.append(
            {
                "bin": label,
                "low_seconds": low,
                "high_seconds": high,
                "videos": len(set(video_ids[selected].tolist())),
                "queries": queries,
                "metrics": (
                    evaluate(predictions[selected], ground_truth[selected], ks, thresholds, strict) if queries else None
                ),
            }
        )
    return report
