"""Ego4D NLQ: the official evaluator's numbers on hand-worked cases, the submission file, the input pipeline on the
dummy dataset (records without times, Ego4D ids, the baseline's short-moment option), and, end to end, smoke training
that writes the submission, and evaluate.py's printed official numbers equal to those computed from its file."""

import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from nlvl_tf import configs
from nlvl_tf.data import input_pipeline
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import ego4d_nlq
from tests import tfds_builds

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY = REPO / "tfds_builders" / "ego4d_nlq" / "dummy_data" / "v2"

# Hand-worked: truth, ranked predictions, and the evaluator's IoU of each (hull "union", nothing added).
CASES = [
    ([2.0, 4.0], [[2.0, 4.0], [0.0, 1.0]], [1.0, 0.0]),
    # 0.3 and 0.5 exactly: strict misses; 0.6 on the third.
    ([0.0, 10.0], [[0.0, 3.0], [0.0, 5.0], [0.0, 6.0], [8.0, 9.0], [9.0, 10.0]], [0.3, 0.5, 0.6, 0.1, 0.1]),
    # overlapping: 2 / hull 6; disjoint: 0 / 7.
    ([2.0, 6.0], [[0.0, 4.0], [7.0, 9.0]], [1.0 / 3.0, 0.0]),
    # one prediction only: Rank@3 and Rank@5 look at what there is.
    ([1.0, 2.0], [[1.0, 1.5]], [0.5]),
]


def test_official_iou_on_hand_worked_windows():
    for truth, predicted, expected in CASES:
        np.testing.assert_allclose(ego4d_nlq.official_iou(predicted, truth), expected, rtol=1e-15)


def test_official_recall_is_strict_and_mean_iou_is_top1():
    truth = [case[0] for case in CASES]
    predicted = [case[1] for case in CASES]
    got = ego4d_nlq.score(predicted, truth)
    # R@k at 0.3 / 0.5 per query (IoU > mu in the first k):
    #   q0: hit at every k and mu; q1: top-1 0.3 misses both, top-3 reaches 0.6 (hit both);
    #   q2: 1/3 > 0.3 hit, not > 0.5; q3: 0.5 misses 0.5, hits 0.3 at every k.
    assert got == {
        "R1@0.3": 75.0,
        "R1@0.5": 25.0,
        "R3@0.3": 100.0,
        "R3@0.5": 50.0,
        "R5@0.3": 100.0,
        "R5@0.5": 50.0,
        "mIoU": pytest.approx(100.0 * (1.0 + 0.3 + 1.0 / 3.0 + 0.5) / 4),
    }


def test_identical_zero_length_windows_are_a_miss_and_make_miou_nan():
    got = ego4d_nlq.score([[[6.0, 6.0]], [[0.0, 1.0]]], [[6.0, 6.0], [0.0, 1.0]])
    assert (got["R1@0.3"], got["R5@0.5"]) == (50.0, 50.0)  # 0 / 0 = NaN, and NaN > mu is false
    assert math.isnan(got["mIoU"])  # the evaluator's np.mean keeps the NaN


def _annotation_file():
    """Two clips, four queries (one without text): what the evaluator reads."""
    query = lambda start, end, text="q": {"query": text, "clip_start_sec": start, "clip_end_sec": end}  # noqa: E731
    return {
        "videos": [
            {
                "video_uid": "v",
                "clips": [
                    {
                        "clip_uid": "c1",
                        "annotations": [
                            {
                                "annotation_uid": "a1",
                                "language_queries": [
                                    query(0.0, 10.0),
                                    query(2.0, 4.0),
                                    {"clip_start_sec": 1.0, "clip_end_sec": 2.0},
                                ],
                            }
                        ],
                    },
                    {
                        "clip_uid": "c2",
                        "annotations": [{"annotation_uid": "a2", "language_queries": [query(1.0, 2.0)]}],
                    },
                ],
            }
        ]
    }


def test_evaluate_submission_averages_over_the_submitted_predictions():
    submission = {
        "version": "1.0",
        "challenge": "ego4d_nlq_challenge",
        "results": [
            {"clip_uid": "c1", "annotation_uid": "a1", "query_idx": 1, "predicted_times": [[2.0, 4.0]]},
            {"clip_uid": "c2", "annotation_uid": "a2", "query_idx": 0, "predicted_times": [[5.0, 6.0], [1.0, 2.0]]},
        ],
    }
    got, evaluated, total = ego4d_nlq.evaluate_submission(submission, _annotation_file())
    assert (evaluated, total) == (2, 4)  # the evaluator's "Evaluated: 2 / 4"
    assert (got["R1@0.5"], got["R3@0.5"], got["mIoU"]) == (50.0, 100.0, 50.0)  # over 2, not 4 (or 3 with text)
    submission["results"].append(dict(submission["results"][0]))  # the evaluator scores a duplicate again
    assert ego4d_nlq.evaluate_submission(submission, _annotation_file())[0]["R1@0.5"] == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match=r"results\[2\]: a second prediction for \('c1', 'a1', 1\)"):
        ego4d_nlq.validate_submission(submission)
    submission["results"][2] = {"clip_uid": "c9", "annotation_uid": "a1", "query_idx": 0, "predicted_times": [[0, 1]]}
    with pytest.raises(ValueError, match=r"results\[2\]: no annotation \('c9', 'a1'\)"):
        ego4d_nlq.evaluate_submission(submission, _annotation_file())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"version": "2.0"}, "version must be '1.0', got '2.0'"),
        ({"challenge": "nlq"}, "challenge must be 'ego4d_nlq_challenge'"),
        ({"results": {}}, "results must be a list"),
        ({"results": [{"clip_uid": "c"}]}, r"results\[0\]: must be an object with exactly the keys"),
        (
            {"results": [{"clip_uid": "", "annotation_uid": "a", "query_idx": 0, "predicted_times": [[0, 1]]}]},
            r"results\[0\]: clip_uid must be a non-empty string",
        ),
        (
            {"results": [{"clip_uid": "c", "annotation_uid": "a", "query_idx": -1, "predicted_times": [[0, 1]]}]},
            r"results\[0\]: query_idx must be an integer >= 0, got -1",
        ),
        (
            {"results": [{"clip_uid": "c", "annotation_uid": "a", "query_idx": 0, "predicted_times": [[0, "1"]]}]},
            r"results\[0\]: predicted_times must be a non-empty list",
        ),
        (
            {"results": [{"clip_uid": "c", "annotation_uid": "a", "query_idx": 0, "predicted_times": []}]},
            r"results\[0\]: predicted_times must be a non-empty list",
        ),
    ],
)
def test_submission_schema_errors_name_the_entry(tmp_path, change, message):
    value = {"version": "1.0", "challenge": "ego4d_nlq_challenge", "results": [], **change}
    path = tmp_path / "submission.json"
    with pytest.raises(ValueError, match=f"^submission: {message}"):
        ego4d_nlq.write_submission(str(path), value)
    assert not path.exists() and not (tmp_path / "submission.json.partial").exists()


@pytest.fixture(scope="module")
def ego4d_data_dir(tmp_path_factory):
    """The v2 dummy data built (slowfast) into a TFDS data dir."""
    sys.path.insert(0, str(REPO / "tfds_builders"))
    from ego4d_nlq import ego4d_nlq_dataset_builder

    data_dir = tmp_path_factory.mktemp("ego4d_tfds")
    tfds_builds.build(ego4d_nlq_dataset_builder.Builder, "slowfast", data_dir, DUMMY)
    return str(data_dir)


def _data_config(data_dir, **overrides):
    config = configs.base_config().data
    config.update(dataset="ego4d_nlq", dataset_config="slowfast", data_dir=data_dir, max_video_len=16, **overrides)
    return config


def test_pipeline_predicts_test_queries_never_trains_on_them_and_carries_the_ids(ego4d_data_dir):
    config = _data_config(ego4d_data_dir)
    splits = splits_lib.load_splits(config, ["train", "test"])
    test_records = input_pipeline.eval_records(splits["test"], config)
    assert [(r.annotated, r.fields["annotation_uid"], r.fields["query_idx"]) for r in test_records] == [
        (False, "ann-f1-0", 0),
        (False, "ann-f1-0", 1),
    ]
    assert math.isnan(test_records[0].fields["clip_start_sec"]) and test_records[0].video_id == "clip-f1"
    assert not input_pipeline.trainable_records(splits["test"], config).any()
    # train: 7 queries, the zero-length one skipped by default. The baseline's short-moment option, pushed to 1.5 s
    # to bite on the dummy data, keeps 2.4, 3.75 and 3.5 s and drops 1.4667, 1.5 (not longer) and 1.25 s.
    assert input_pipeline.trainable_records(splits["train"], config).sum() == 6
    strict = _data_config(ego4d_data_dir, min_train_moment_seconds=1.5)
    kept = input_pipeline.trainable_records(splits["train"], strict)
    durations = splits["train"].end_time - splits["train"].start_time
    np.testing.assert_array_equal(kept, durations > 1.5)
    assert kept.sum() == 3


def run(command):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def smoke_workdir(ego4d_data_dir, tmp_path_factory):
    """experiments/configs/ego4d_nlq.py:slowfast,smoke trained for 1 epoch on the dummy dataset."""
    workdir = tmp_path_factory.mktemp("ego4d_smoke")
    run(
        [
            sys.executable,
            str(REPO / "experiments" / "train.py"),
            f"--config={REPO}/experiments/configs/ego4d_nlq.py:slowfast,smoke",
            f"--workdir={workdir}",
            f"--config.data.data_dir={ego4d_data_dir}",
            "--config.train.batch_size=2",
        ]
    )
    return workdir


def test_smoke_training_writes_the_test_submission(smoke_workdir):
    with open(smoke_workdir / "eval" / "test" / "submission.json", encoding="utf-8") as f:
        submission = json.load(f)
    ego4d_nlq.validate_submission(submission)
    assert [(r["clip_uid"], r["annotation_uid"], r["query_idx"]) for r in submission["results"]] == [
        ("clip-f1", "ann-f1-0", 0),
        ("clip-f1", "ann-f1-0", 1),
    ]
    for result in submission["results"]:
        assert len(result["predicted_times"]) == 5
        assert all(0.0 <= start <= end <= 5.0 for start, end in result["predicted_times"])  # clip-f1 lasts 5 s
    assert not (smoke_workdir / "eval" / "test" / "metrics.json").exists()  # no ground truth, nothing scored
    assert (smoke_workdir / "eval" / "validation" / "ego4d_metrics.json").exists()


def test_submission_round_trip_gives_the_numbers_evaluate_printed(smoke_workdir, ego4d_data_dir, tmp_path):
    path = tmp_path / "val_submission.json"
    printed = run(
        [
            sys.executable,
            str(REPO / "experiments" / "evaluate.py"),
            f"--workdir={smoke_workdir}",
            "--split=validation",
            f"--data_dir={ego4d_data_dir}",
            f"--submission={path}",
        ]
    ).stdout
    with open(path, encoding="utf-8") as f:
        submission = json.load(f)
    with open(DUMMY / "nlq_val.json", encoding="utf-8") as f:
        from_file, evaluated, total = ego4d_nlq.evaluate_submission(submission, json.load(f))
    assert (evaluated, total) == (5, 5)
    with open(smoke_workdir / "eval" / "validation" / "ego4d_metrics.json", encoding="utf-8") as f:
        assert json.load(f) == from_file
    official = printed.split("Ego4D NLQ evaluator")[1].splitlines()[1]
    assert dict(re.findall(r"(\S+) (-?\d+\.\d\d|nan)", official)) == {k: f"{v:.2f}" for k, v in from_file.items()}
    ours = printed.split("validation: 5 queries with ground truth (Rank@k: IoU >= mu):")[1].splitlines()[1]
    assert "R1@0.7" in ours and "R3@0.3" not in ours  # our convention's keys, beside the official ones
