"""The Ego4D NLQ challenge's own scoring, and its submission file (docs/ego4d_nlq.md). numpy and json only.

The official evaluator (EGO4D/episodic-memory, NLQ/VSLNet/utils/evaluate_ego4d_nlq.py) scores differently from
`metrics` in four ways, all reproduced here:

- IoU = max(0, min(ends) - max(starts)) / max(0, max(ends) - min(starts)) in float64, nothing added: two identical
  zero-length windows give 0 / 0 = NaN, and NaN > mu is false, so such a prediction is a miss.
- A query is a hit at k if IoU > mu (strictly) for any of its first k predictions; fewer than k predictions are fine.
- Recall is averaged over the submitted predictions (it prints "Evaluated: n / N"), not over the ground truth.
- mIoU is the mean IoU of each query's top-1 prediction (NaN ones included, so one such query makes it NaN).

Values are percent, keyed like ours: "R1@0.3", ..., "R5@0.5", "mIoU".
"""

import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from nlvl_tf import errors
from nlvl_tf import workdir as workdir_lib

THRESHOLDS = (0.3, 0.5)
KS = (1, 3, 5)
VERSION = "1.0"
CHALLENGE = "ego4d_nlq_challenge"
SUBMITTED_TOP_K = 5
_RESULT_KEYS = {"clip_uid", "annotation_uid", "query_idx", "predicted_times"}


def official_iou(predicted, truth):
    """The evaluator's IoU of each predicted window [K, 2] with one ground truth [2]; NaN for 0 / 0."""
    predicted = np.asarray(predicted, np.float64).reshape(-1, 2)
    truth = np.asarray(truth, np.float64)
    intersection = np.maximum(0.0, np.minimum(predicted[:, 1], truth[1]) - np.maximum(predicted[:, 0], truth[0]))
    union = np.maximum(0.0, np.maximum(predicted[:, 1], truth[1]) - np.minimum(predicted[:, 0], truth[0]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / union


def score(predicted_times: Sequence, ground_truth, thresholds=THRESHOLDS, ks=KS):
    """The official numbers of ranked predictions (one [K_i, 2] list per query, best first) against [Q, 2] truth."""
    if len(predicted_times) != len(ground_truth) or len(predicted_times) == 0:
        raise errors.InputError(
            f"need one ground truth per query and at least one query, got {len(predicted_times)} predictions and "
            f"{len(ground_truth)} ground truths"
        )
    overlaps = [official_iou(times, truth) for times, truth in zip(predicted_times, ground_truth)]
    results = {}
    for k in ks:
        for threshold in thresholds:
            hits = [bool((overlap > threshold)[:k].any()) for overlap in overlaps]
            results[f"R{k}@{threshold:g}"] = 100.0 * float(np.mean(hits))
    results["mIoU"] = 100.0 * float(np.mean([overlap[0] for overlap in overlaps]))
    return results


def submission(records, times, top_k=SUBMITTED_TOP_K):
    """The challenge file's object for evaluation records (`input_pipeline.Record` with Ego4D's fields) and their
    ranked predictions `times` [Q, K, 2] in clip seconds: the first `top_k` of each, best first."""
    results = []
    for record, ranked in zip(records, times):
        if "annotation_uid" not in record.fields or "query_idx" not in record.fields:
            raise errors.InputError(
                f"record of clip {record.video_id!r} has no Ego4D ids (annotation_uid, query_idx): a submission needs "
                "the ego4d_nlq dataset"
            )
        results.append(
            {
                "clip_uid": record.video_id,
                "annotation_uid": record.fields["annotation_uid"],
                "query_idx": int(record.fields["query_idx"]),
                "predicted_times": [[float(start), float(end)] for start, end in ranked[:top_k]],
            }
        )
    return {"version": VERSION, "challenge": CHALLENGE, "results": results}


def validate_submission(value, allow_duplicates=False):
    """Raises ValueError naming the first thing in `value` the challenge's format does not allow.

    Two predictions for one query are refused unless `allow_duplicates` (the evaluator would score both).
    """
    if not isinstance(value, dict):
        raise errors.InputError(f"submission: expected an object, got {type(value).__name__}")
    for key, expected in (("version", VERSION), ("challenge", CHALLENGE)):
        if value.get(key) != expected:
            raise errors.InputError(f"submission: {key} must be {expected!r}, got {value.get(key)!r}")
    if not isinstance(value.get("results"), list):
        raise errors.InputError("submission: results must be a list")
    seen = set()
    for index, result in enumerate(value["results"]):
        where = f"submission: results[{index}]"
        if not isinstance(result, dict) or set(result) != _RESULT_KEYS:
            raise errors.InputError(f"{where}: must be an object with exactly the keys {sorted(_RESULT_KEYS)}")
        for key in ("clip_uid", "annotation_uid"):
            if not isinstance(result[key], str) or not result[key]:
                raise errors.InputError(f"{where}: {key} must be a non-empty string, got {result[key]!r}")
        query_idx = result["query_idx"]
        if isinstance(query_idx, bool) or not isinstance(query_idx, int) or query_idx < 0:
            raise errors.InputError(f"{where}: query_idx must be an integer >= 0, got {query_idx!r}")
        key = (result["clip_uid"], result["annotation_uid"], query_idx)
        if key in seen and not allow_duplicates:
            raise errors.InputError(f"{where}: a second prediction for {key}")
        seen.add(key)
        times = result["predicted_times"]
        if not isinstance(times, list) or not times or not all(_is_window(window) for window in times):
            raise errors.InputError(f"{where}: predicted_times must be a non-empty list of [start, end] finite numbers")


def _is_window(window):
    return (
        isinstance(window, list)
        and len(window) == 2
        and all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in window)
    )


def write_submission(path, value):
    """Validates `value` and writes it to `path` whole (aside, then renamed: a failure leaves no partial file)."""
    validate_submission(value)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    workdir_lib.write_atomically(path, json.dumps(value))


def ground_truth_queries(annotations: Mapping):
    """{(clip_uid, annotation_uid): language_queries} of an annotation file's object, and how many queries it has
    (the evaluator's N)."""
    table, count = {}, 0
    for video in annotations["videos"]:
        for clip in video["clips"]:
            for annotation in clip["annotations"]:
                table[(clip["clip_uid"], annotation["annotation_uid"])] = annotation["language_queries"]
                count += len(annotation["language_queries"])
    return table, count


def evaluate_submission(value, annotations: Mapping, thresholds=THRESHOLDS, ks=KS):
    """Scores a submission object against an annotation file's object (e.g. nlq_val.json) as the evaluator does.

    Returns:
        (metrics in percent, n predictions evaluated, N queries in the annotation file).
    """
    validate_submission(value, allow_duplicates=True)
    table, total = ground_truth_queries(annotations)
    predicted, truth = [], []
    for index, result in enumerate(value["results"]):
        key = (result["clip_uid"], result["annotation_uid"])
        if key not in table:
            raise errors.InputError(f"submission: results[{index}]: no annotation {key} in the ground truth")
        queries = table[key]
        if result["query_idx"] >= len(queries) or not isinstance(queries[result["query_idx"]], dict):
            raise errors.InputError(f"submission: results[{index}]: {key} has no query {result['query_idx']}")
        query = queries[result["query_idx"]]
        predicted.append(result["predicted_times"])
        truth.append([query["clip_start_sec"], query["clip_end_sec"]])
    return score(predicted, truth, thresholds, ks), len(predicted), total
