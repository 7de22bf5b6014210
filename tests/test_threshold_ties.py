"""Metrics right at the threshold (docs/metrics.md): IoUs that are exactly mu in decimal arithmetic count at ">=" and
never at ">", from the annotation's float64 times through the input pipeline, index -> time and the metric."""

import fractions

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from nlvl_tf import configs
from nlvl_tf.data import builder_common, input_pipeline, labels
from nlvl_tf.eval import evaluation, metrics
from tests.test_input_pipeline import make_config, video_dataset

# A video of 12.8 s in N = 128 units: unit boundaries fall on every tenth of a second.
DURATION, UNITS = 12.8, 128


def one_decimal_ties(count, threshold, seed=0):
    """`count` (ground truth, prediction) pairs in tenths of a second inside [0, 12.8] s whose IoU is exactly
    `threshold` in decimal arithmetic: the two intervals overlap by I tenths and their hull spans U, I / U = mu.

    Returns int arrays [count, 2] of tenths: ground truth and prediction. Half the pairs are nested (one interval is the
    hull), half overlap partially; which interval comes first is random.
    """
    mu = fractions.Fraction(str(threshold))
    rng = np.random.default_rng(seed)
    truth, predicted = [], []
    while len(truth) < count:
        union = int(rng.integers(1, DURATION * 10 // mu.denominator + 1)) * mu.denominator
        intersection = union * mu.numerator // mu.denominator
        hull_start = int(rng.integers(0, DURATION * 10 - union + 1))
        if rng.random() < 0.5:  # nested: the hull and an interval of length I inside it
            inner = hull_start + int(rng.integers(0, union - intersection + 1))
            pair = [(hull_start, hull_start + union), (inner, inner + intersection)]
        else:  # partial overlap: [hull_start, a] and [b, hull_end] with a - b = I
            b = hull_start + int(rng.integers(1, union - intersection + 1)) if union > intersection else hull_start
            pair = [(hull_start, b + intersection), (b, hull_start + union)]
        if any(end <= start for start, end in pair):
            continue
        rng.shuffle(pair)
        truth.append(pair[0])
        predicted.append(pair[1])
    return np.array(truth), np.array(predicted)


def test_constructed_pairs_are_exact_decimal_ties():
    truth, predicted = one_decimal_ties(200, 0.3)
    for (a, b), (c, d) in zip(truth, predicted):
        assert fractions.Fraction(max(0, min(b, d) - max(a, c)), max(b, d) - min(a, c)) == fractions.Fraction(3, 10)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_1500_one_decimal_ties_all_count_at_ge_and_none_at_gt(threshold):
    truth_tenths, predicted_tenths = one_decimal_ties(1500, threshold, seed=int(threshold * 10))
    truth = np.array([[float(f"{t / 10}") for t in pair] for pair in truth_tenths])  # as parsed from one-decimal text
    # Predictions as evaluation makes them: unit indices -> seconds (index * duration / N, float64).
    start, end = labels.index_to_time(predicted_tenths[:, 0], predicted_tenths[:, 1] - 1, DURATION, UNITS)
    predictions = np.stack([start, end], axis=-1)[:, None, :]
    assert metrics.rank_at_k(predictions, truth, ks=(1,), thresholds=(threshold,))[f"R1@{threshold:g}"] == 100.0
    assert (
        metrics.rank_at_k(predictions, truth, ks=(1,), thresholds=(threshold,), iou_rule=">")[f"R1@{threshold:g}"]
        == 0.0
    )
    # Plain binary arithmetic gets these wrong, so the two checks above can fail: in float32 (the times as stored
    # before) and in float64 alike, some ties land below mu and some above.
    for dtype in (np.float32, np.float64):
        iou = metrics.temporal_iou(predictions[:, 0].astype(dtype), truth.astype(dtype)).astype(dtype)
        assert 0 < np.mean(iou >= dtype(threshold)) < 1 or 0 < np.mean(iou > dtype(threshold)) < 1


def test_the_issue_example_and_its_strict_twin():
    assert metrics.iou_passes([0.0, 1.0], [0.4, 0.9], 0.5)
    assert not metrics.iou_passes([0.0, 1.0], [0.4, 0.9], 0.5, iou_rule=">")
    assert np.float32(metrics.temporal_iou(np.float32([0.0, 1.0]), np.float32([0.4, 0.9]))) < np.float32(0.5)
    # Just off the tie, either way, on the nanosecond grid.
    assert not metrics.iou_passes([0.0, 1.0], [0.4, 0.899999999], 0.5)
    assert metrics.iou_passes([0.0, 1.0], [0.4, 0.900000001], 0.5, iou_rule=">")
    assert metrics.iou_passes([1.0, 1.0], [1.0, 1.0], 0.0) and not metrics.iou_passes([1.0, 1.0], [1.0, 1.0], 0.3)
    with pytest.raises(ValueError, match="iou_rule"):
        metrics.iou_passes([0.0, 1.0], [0.4, 0.9], 0.5, iou_rule="=>")


def test_times_survive_the_tfds_feature_spec_exactly():
    features = builder_common.video_features(2)
    example = {
        "video_id": "v",
        "duration": 30.96,
        "features": np.zeros((3, 2), np.float32),
        "annotations": [{"query": "q", "start": 0.4, "end": 0.9, "moment_valid": True}],
    }
    serialized = tfds.core.example_serializer.ExampleSerializer(features.get_serialized_info()).serialize_example(
        features.encode_example(example)
    )
    parser = tfds.core.example_parser.ExampleParser(features.get_serialized_info())
    decoded = tfds.as_numpy(features.decode_example(parser.parse_example(serialized)))
    assert decoded["duration"] == 30.96
    assert (decoded["annotations"]["start"][0], decoded["annotations"]["end"][0]) == (0.4, 0.9)


def test_evaluation_counts_ties_by_the_configured_rule():
    """SplitData (float64 times) -> batches -> index_to_time -> metrics, with the rule from config.eval.iou_rule."""
    truth_tenths, predicted_tenths = one_decimal_ties(40, 0.5, seed=5)
    videos = [
        {
            "video_id": f"v{i}",
            "duration": DURATION,
            "features": np.ones((UNITS, 2)),
            "query": ["a door"],
            "start": [t[0] / 10],
            "end": [t[1] / 10],
        }
        for i, t in enumerate(truth_tenths)
    ]
    data = input_pipeline.SplitData.from_videos(video_dataset(videos), make_config(max_video_len=UNITS))
    predicted = dict(zip((f"v{i}".encode() for i in range(len(videos))), predicted_tenths))

    def predict(batch):  # the model's ranked spans, made up: the tie of each record first, as unit indices
        spans = np.array([predicted[v] for v in batch["video_id"].numpy()])
        starts, ends = np.repeat(spans[:, :1], 5, axis=1), np.repeat(spans[:, 1:] - 1, 5, axis=1)
        start, end = labels.index_to_time(starts, ends, batch["duration"], batch["video_length"])
        return {"pm": (start, end, tf.ones_like(start))}

    config = configs.base_config()
    config.data = make_config(max_video_len=UNITS)
    for rule, expected in ((">=", 100.0), (">", 0.0)):
        config.eval.iou_rule = rule
        _, _, results = evaluation.evaluate_split(predict, data, encoder=lambda q: (q, q), config=config)
        assert (results["pm"]["R1@0.5"], results["pm"]["R5@0.5"]) == (expected, expected), rule
