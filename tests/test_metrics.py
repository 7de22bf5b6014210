"""Tests of nlvl_tf.metrics on hand-computed examples (all times exact in binary)."""

import numpy as np
import pytest

from nlvl_tf.eval import metrics

GROUND_TRUTH = [[0.0, 4.0]] * 4
FAR = [4.0, 8.0]  # touches the ground truth only at t = 4: IoU 0
# Hand-worked IoUs with [0, 4] per query, top-1 first:
#   q0 [1, 0, 0, 0, 0]     q1 [0.5, 0, 0, 0, 0]
#   q2 [0.25, 0, 0, 0, 0.75]  q3 [0, 1/3, 0, 0, 0]
PREDICTIONS = [
    [[0.0, 4.0], FAR, FAR, FAR, FAR],
    [[0.0, 2.0], FAR, FAR, FAR, FAR],
    [[3.0, 4.0], FAR, FAR, FAR, [1.0, 4.0]],
    [FAR, [2.0, 6.0], FAR, FAR, FAR],
]


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        ([0.0, 2.0], [0.0, 4.0], 0.5),
        ([1.0, 3.0], [0.0, 4.0], 0.5),
        ([2.0, 6.0], [0.0, 4.0], 2.0 / 6.0),
        ([0.0, 2.0], [2.0, 4.0], 0.0),  # touching
        ([5.0, 6.0], [0.0, 4.0], 0.0),  # disjoint
        ([2.0, 2.0], [0.0, 4.0], 0.0),  # zero-length prediction
        ([1.0, 1.0], [1.0, 1.0], 0.0),  # identical zero-length intervals: no union, no NaN
    ],
)
def test_temporal_iou_worked_examples(pred, gt, expected):
    assert metrics.temporal_iou(pred, gt) == expected
    assert metrics.temporal_iou(gt, pred) == expected


def test_temporal_iou_broadcasts_ranked_predictions_against_ground_truth():
    ious = metrics.temporal_iou(np.array(PREDICTIONS), np.array(GROUND_TRUTH)[:, None, :])
    assert ious.shape == (4, 5)
    np.testing.assert_array_equal(ious[:, 0], [1.0, 0.5, 0.25, 0.0])
    np.testing.assert_array_equal(ious.max(axis=1), [1.0, 0.5, 0.75, 2.0 / 6.0])


def test_evaluate_hand_computed_with_iou_exactly_at_threshold():
    assert metrics.evaluate(PREDICTIONS, GROUND_TRUTH) == {
        "R1@0.3": 50.0,  # q0, q1
        "R1@0.5": 50.0,  # q1's IoU is exactly 0.5 and counts for >=
        "R1@0.7": 25.0,
        "R5@0.3": 100.0,
        "R5@0.5": 75.0,
        "R5@0.7": 50.0,  # q2's fifth prediction
        "mIoU": 43.75,  # 100 * (1 + 0.5 + 0.25 + 0) / 4
    }


def test_strict_threshold_excludes_iou_equal_to_mu():
    strict = metrics.rank_at_k(PREDICTIONS, GROUND_TRUTH, iou_rule=">")
    assert strict["R1@0.5"] == 25.0
    assert strict["R5@0.5"] == 50.0
    assert strict["R1@0.3"] == 50.0


def test_rank_at_k_custom_ks_and_thresholds_and_mean_iou():
    # Best of the top 2 per query: 1, 0.5, 0.25, 1/3.
    assert metrics.rank_at_k(PREDICTIONS, GROUND_TRUTH, ks=(2,), thresholds=(0.3, 0.4)) == {
        "R2@0.3": 75.0,
        "R2@0.4": 50.0,
    }
    assert metrics.mean_iou(PREDICTIONS, GROUND_TRUTH) == 43.75


def test_evaluate_rejects_inputs_it_cannot_score():
    with pytest.raises(ValueError, match="K = 1"):
        metrics.evaluate([[[0.0, 1.0]]], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="same Q"):
        metrics.evaluate(PREDICTIONS, GROUND_TRUTH[:3])
    with pytest.raises(ValueError, match="empty"):
        metrics.evaluate(np.zeros((0, 5, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="last axis of size 2"):
        metrics.temporal_iou([0.0, 1.0, 2.0], [0.0, 1.0])


def test_by_video_length_uses_right_inclusive_paper_bins():
    durations = [30.0, 120.0, 120.0, 120.5, 720.0, 800.0]
    video_ids = ["a", "b", "b", "c", "d", "e"]
    ground_truth = GROUND_TRUTH + GROUND_TRUTH[:2]
    predictions = PREDICTIONS + PREDICTIONS[:2]
    report = metrics.by_video_length(durations, video_ids, predictions, ground_truth)
    assert [row["bin"] for row in report] == [
        "0-2 min",
        "2-4 min",
        "4-6 min",
        "6-8 min",
        "8-10 min",
        "10-12 min",
        ">12 min",
    ]
    assert [(row["videos"], row["queries"]) for row in report] == [
        (2, 3),
        (1, 1),
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 1),
        (1, 1),
    ]
    assert [row["metrics"] is None for row in report] == [False, False, True, True, True, False, False]
    assert (report[0]["low_seconds"], report[0]["high_seconds"]) == (0.0, 120.0)
    assert (report[-1]["low_seconds"], report[-1]["high_seconds"]) == (720.0, None)
    first_bin = report[0]["metrics"]  # q0, q1, q2: exactly 120 s belongs to the first bin
    assert first_bin["mIoU"] == pytest.approx(100.0 * 1.75 / 3)
    assert first_bin == metrics.evaluate(PREDICTIONS[:3], GROUND_TRUTH[:3])
    assert report[1]["metrics"]["R5@0.3"] == 100.0  # q3 alone, 120.5 s
    assert report[5]["metrics"]["mIoU"] == 100.0  # 720 s (exactly 12 min) -> "10-12 min"
    assert report[6]["metrics"]["mIoU"] == 50.0


def test_by_video_length_rejects_mismatched_or_bad_durations():
    with pytest.raises(ValueError, match="durations and video_ids"):
        metrics.by_video_length([30.0], ["a", "b"], PREDICTIONS[:1], GROUND_TRUTH[:1])
    with pytest.raises(ValueError, match="finite and >= 0"):
        metrics.by_video_length([np.nan], ["a"], PREDICTIONS[:1], GROUND_TRUTH[:1])
