"""Ego4D NLQ: the dummy data in the v1 and the v2 schema build to the same hand-worked records; the clip-cut rule;
every malformed case stops with one line naming the file and the clip; .pt and .npy features; Beam equals in-process.
"""

import json
import math
import pathlib
import re
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from nlvl_tf.data import builder_common as common
from tests import tfds_builds

from . import ego4d_nlq_dataset_builder as ego4d

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
FEATURES = DUMMY / "v1" / "features"
# clip_uid -> (video, first row, stop row, duration): feature_rows by hand, e.g. clip-a2 8.5333 s x 1.875 =
# 15.9999375 -> 15 and 20 s x 1.875 = 37.5 -> 37, inclusive -> stop 38.
CLIPS = {
    "train": {
        "clip-a1": ("vid-a", 0, 16, 8.0),
        "clip-a2": ("vid-a", 15, 38, 11.4667),
        "clip-b1": ("vid-b", 3, 27, 12.0),
    },
    "validation": {"clip-d1": ("vid-d", 1, 23, 11.0), "clip-e1": ("vid-e", 0, 19, 10.0)},
    "test": {"clip-f1": ("vid-f", 7, 17, 5.0)},
}
# clip_uid -> [(annotation_uid, query_idx, start, end, moment_valid, clip_start_sec, clip_end_sec)]
QUERIES = {
    "clip-a1": [("ann-a1-0", 0, 1.2, 3.6, True, 1.2, 3.6), ("ann-a1-0", 1, 4.0, 4.0, False, 4.0, 4.0)],
    "clip-a2": [("ann-a2-0", 0, 2.5, 6.25, True, 2.5, 6.25), ("ann-a2-0", 1, 10.0, 11.4667, True, 10.0, 12.0)],
    "clip-b1": [
        ("ann-b1-0", 0, 0.5, 2.0, True, 0.5, 2.0),
        ("ann-b1-1", 0, 6.0, 9.5, True, 6.0, 9.5),
        ("ann-b1-1", 1, 3.25, 4.5, True, 3.25, 4.5),
    ],
    "clip-d1": [
        ("ann-d1-0", 0, 2.0, 4.0, True, 2.0, 4.0),
        ("ann-d1-0", 1, 5.5, 7.0, True, 5.5, 7.0),
        ("ann-d1-1", 0, 0.0, 1.5, True, 0.0, 1.5),
    ],
    "clip-e1": [("ann-e1-0", 0, 3.0, 5.0, True, 3.0, 5.0), ("ann-e1-0", 1, 6.0, 6.0, False, 6.0, 6.0)],
    "clip-f1": [
        ("ann-f1-0", 0, 0.0, 0.0, False, math.nan, math.nan),
        ("ann-f1-0", 1, 0.0, 0.0, False, math.nan, math.nan),
    ],
}
REPORT = {  # split -> (clips, queries, in file, without text, zero length, invalid, end clipped, without features)
    "train": (3, 7, 10, 2, 1, 1, 1, 1),
    "validation": (2, 5, 5, 0, 1, 1, 0, 0),
    "test": (1, 2, 3, 1, 0, 0, 0, 0),
}


def video_features(video_uid):
    if video_uid == "vid-d":
        import torch

        return torch.load(FEATURES / "vid-d.pt").numpy().astype(np.float32)
    with open(FEATURES / f"{video_uid}.npy", "rb") as f:  # DatasetBuilderTestCase allows np.load on files only
        return np.load(f).astype(np.float32)


class _DummyDataChecks:
    """Both schemas must give these records (hand-worked above from make_dummy_data.py)."""

    DATASET_CLASS = ego4d.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["slowfast"]
    SPLITS = {"train": 3, "validation": 2, "test": 1}

    def _download_and_prepare_as_dataset(self, builder):
        with self.assertLogs(
            "ego4d_nlq train: 1 of 3 videos have no feature file and are left out (1 annotations); first: vid-c",
            level="warning",
        ):
            super()._download_and_prepare_as_dataset(builder)
        reports = builder.info.metadata[common.METADATA_REPORT_KEY]
        for split, counts in REPORT.items():
            report = reports[split]
            keys = (
                "clips",
                "queries",
                "queries_in_file",
                "queries_without_text",
                "zero_length_moments",
                "invalid_moments",
                "end_clipped",
                "clips_without_features",
            )
            self.assertEqual(tuple(report[key] for key in keys), counts, split)
        self.assertEqual(reports["train"]["first_videos_without_features"], ["vid-c"])
        for split, clips in CLIPS.items():
            examples = tfds_builds.examples_by_key(builder, split)
            self.assertEqual(sorted(examples), sorted(uid.encode() for uid in clips))
            for clip_uid, (video_uid, first, stop, duration) in clips.items():
                example = examples[clip_uid.encode()]
                self.assertEqual(example["video_uid"], video_uid.encode())
                self.assertEqual(example["duration"], duration)  # float64, exact
                np.testing.assert_array_equal(example["features"], video_features(video_uid)[first:stop])
                annotations = example["annotations"]
                got = list(
                    zip(
                        (uid.decode() for uid in annotations["annotation_uid"]),
                        annotations["query_idx"].tolist(),
                        annotations["start"].tolist(),
                        annotations["end"].tolist(),
                        annotations["moment_valid"].tolist(),
                        annotations["clip_start_sec"].tolist(),
                        annotations["clip_end_sec"].tolist(),
                    )
                )
                want = QUERIES[clip_uid]
                self.assertEqual(len(got), len(want), clip_uid)
                for got_row, want_row in zip(got, want):
                    np.testing.assert_equal(got_row, want_row)  # NaN == NaN for the test split
                self.assertEqual(annotations["annotated"].tolist(), [split != "test"] * len(want))
        a1 = tfds_builds.examples_by_key(builder, "train")[b"clip-a1"]["annotations"]
        self.assertEqual(a1["query"][0], b"Where did I put the red cup?")
        self.assertEqual(a1["template"][0], b"Objects: Where is object X before / after event Y?")
        f1 = tfds_builds.examples_by_key(builder, "test")[b"clip-f1"]["annotations"]
        self.assertEqual(f1["template"].tolist(), [b"", b""])


class V1SlowfastTest(_DummyDataChecks, tfds.testing.DatasetBuilderTestCase):
    EXAMPLE_DIR = str(DUMMY / "v1")


class V2SlowfastTest(_DummyDataChecks, tfds.testing.DatasetBuilderTestCase):
    EXAMPLE_DIR = str(DUMMY / "v2")


@pytest.mark.parametrize(
    "start, end, rows",
    [
        (0.0, 8.0, (0, 16)),
        (8.5333, 20.0, (15, 38)),  # 15.9999375 truncates
        (17.25669, 497.25669, (32, 933)),  # 32.356..., 932.356...
        (0.5333333, 480.5333333, (0, 901)),  # 0.99999994 and 900.99999994 truncate
        (1.6, 3.2, (3, 7)),  # 3.0 and 6.0 exactly: the product is exact in float64 here
    ],
)
def test_feature_rows_follow_the_official_truncation(start, end, rows):
    assert ego4d.feature_rows(start, end) == rows


def test_durations_are_decimal_differences():
    split = ego4d.SplitClips("f", "2.0")
    clip = ego4d._read_clip(_clip(video_start_sec=120.7, video_end_sec=600.7), "v", "f: video 'v' clip 0", split, True)
    assert clip.duration == 480.0 and 600.7 - 120.7 != 480.0


def _query(**overrides):
    return {"query": "Where is the cup?", "clip_start_sec": 1.0, "clip_end_sec": 2.0, "template": "T", **overrides}


def _clip(queries=None, **overrides):
    return {
        "clip_uid": "clip-x",
        "video_start_sec": 10.0,
        "video_end_sec": 20.0,
        "annotations": [{"annotation_uid": "ann-x", "language_queries": queries or [_query()]}],
        **overrides,
    }


def _file(clips):
    return {"version": "2.0", "videos": [{"video_uid": "vid-x", "clips": clips}]}


def _write(directory, data):
    path = directory / "nlq_train.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(
    "data, message",
    [
        ('{"videos": [', r":1:13: invalid JSON"),
        ([], r": expected an object, got list"),
        ({"version": "1"}, r": missing field 'videos'"),
        ({"videos": [{"clips": []}]}, r": video 0: missing field 'video_uid'"),
        ({"videos": [{"video_uid": "vid-x", "clips": {}}]}, r": video 'vid-x': clips must be a list"),
        (_file([{"video_start_sec": 1.0}]), r": video 'vid-x' clip 0: missing field 'clip_uid'"),
        (_file([_clip(clip_uid="")]), r": video 'vid-x' clip 0: empty clip_uid"),
        (_file([_clip(video_start_sec=None)]), r": clip 'clip-x': video_start_sec must be a finite number, got None"),
        (_file([{"clip_uid": "clip-x", "video_start_sec": 1.0}]), r": clip 'clip-x': missing field 'video_end_sec'"),
        (_file([_clip(video_end_sec=10.0)]), r": clip 'clip-x': needs 0 <= video_start_sec < video_end_sec, got 10"),
        (_file([_clip(video_start_sec=-1.0)]), r": clip 'clip-x': needs 0 <= video_start_sec"),
        (_file([_clip(), _clip()]), r": clip 'clip-x': clip_uid appears twice in the file"),
        (_file([_clip(annotations={})]), r": clip 'clip-x': annotations must be a list"),
        (_file([_clip(annotations=[{"language_queries": []}])]), r": clip 'clip-x' annotation 0: missing field"),
        (
            _file([_clip(annotations=[{"annotation_uid": "a", "language_queries": []}] * 2)]),
            r": clip 'clip-x' annotation 'a': annotation_uid appears twice in the clip",
        ),
        (_file([_clip(annotations=[{"annotation_uid": "a"}])]), r": clip 'clip-x' annotation 'a': missing field"),
        (_file([_clip(["where?"])]), r": clip 'clip-x' annotation 'ann-x' query 0: expected an object, got str"),
        (_file([_clip([_query(query=12)])]), r": clip 'clip-x' annotation 'ann-x' query 0: query must be a str"),
        (_file([_clip([_query(template=3)])]), r": clip 'clip-x' annotation 'ann-x' query 0: template must be a str"),
        (
            _file([_clip([_query(), {"query": "Where?", "clip_start_sec": 1.0}])]),
            r": clip 'clip-x' annotation 'ann-x' query 1: missing field 'clip_end_sec'",
        ),
        (
            _file([_clip([_query(clip_start_sec="1.0")])]),
            r": clip 'clip-x' annotation 'ann-x' query 0: clip_start_sec must be a finite number, got '1.0'",
        ),
        (
            '{"videos": [{"video_uid": "v", "clips": [{"clip_uid": "c", "video_start_sec": 0, "video_end_sec": 9, '
            '"annotations": [{"annotation_uid": "a", "language_queries": [{"query": "q", "clip_start_sec": NaN, '
            '"clip_end_sec": 1}]}]}]}]}',
            r": clip 'c' annotation 'a' query 0: clip_start_sec must be a finite number, got nan",
        ),
    ],
)
def test_each_malformed_case_is_one_line_naming_the_file_and_the_clip(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(common.AnnotationFormatError, match=f"^{re.escape(str(path))}{message}") as caught:
        ego4d.read_split(epath.Path(path), annotated=True)
    assert "\n" not in str(caught.value)


def test_the_test_file_needs_no_times_and_counts_queries_without_text(tmp_path):
    path = _write(tmp_path, _file([_clip([{"query": "Where?"}, {}, None, {"query": "  "}])]))
    split = ego4d.read_split(epath.Path(path), annotated=False)
    (query,) = split.clips["clip-x"].queries
    assert (query.query, query.query_idx, query.annotated, query.moment_valid) == ("Where?", 0, False, False)
    assert (split.queries_in_file, split.queries_without_text, split.num_queries) == (4, 3, 1)


def _item(clip_uid, video_uid, start, end):
    return video_uid, [ego4d.Clip(clip_uid, video_uid, start, end, end - start)]


def test_a_clip_past_its_video_features_names_the_file_and_the_clip():
    # vid-f has 20 rows; 11 s x 1.875 = 20.6 -> row 20 is past the last.
    with pytest.raises(ValueError, match=r"vid-f.npy: clip 'clip-late' starts at row 20 .* has 20 rows$"):
        list(ego4d.clip_examples(_item("clip-late", "vid-f", 11.0, 12.0), str(FEATURES), 2304))


def test_bad_feature_files_name_the_file(tmp_path):
    np.save(tmp_path / "vid-x.npy", np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"vid-x.npy: features must have shape \[T, 2304\], got \[4, 3\]"):
        list(ego4d.clip_examples(_item("clip-x", "vid-x", 0.0, 1.0), str(tmp_path), 2304))
    (tmp_path / "vid-y.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"vid-y.pt: cannot read a torch tensor"):
        list(ego4d.clip_examples(_item("clip-y", "vid-y", 0.0, 1.0), str(tmp_path), 2304))


def test_pt_features_without_torch_are_one_line_naming_the_extra_and_npy_needs_no_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if it were not installed
    with pytest.raises(
        ImportError, match=r"vid-d.pt: reading .pt features needs PyTorch: pip install 'nlvl-tf\[torch\]'"
    ):
        list(ego4d.clip_examples(_item("clip-d1", "vid-d", 1.0, 12.0), str(FEATURES), 2304))
    # vid-e has a .npy beside an unreadable .pt: the .npy is read, torch never imported.
    ((key, example),) = ego4d.clip_examples(_item("clip-e1", "vid-e", 0.0, 10.0), str(FEATURES), 2304)
    np.testing.assert_array_equal(example["features"], video_features("vid-e")[0:19])


def test_pt_features_load_with_torch():
    ((_, example),) = ego4d.clip_examples(_item("clip-d1", "vid-d", 1.0, 12.0), str(FEATURES), 2304)
    assert example["features"].dtype == np.float32
    np.testing.assert_array_equal(example["features"], video_features("vid-d")[1:23])


def test_configs_name_the_feature_families():
    dims = {config.name: config.feature_dim for config in ego4d.Builder.BUILDER_CONFIGS}
    assert dims == {"slowfast": 2304, "omnivore": 1536, "egovlp": 256}


def test_beam_build_equals_the_in_process_build(tmp_path):
    """The v2 dummy data generated by a Beam pipeline (DirectRunner) holds the in-process build's records."""
    manual_dir = DUMMY / "v2"
    in_process = tfds_builds.build(ego4d.Builder, "slowfast", tmp_path / "in_process", manual_dir)
    with_beam = tfds_builds.build(ego4d.Builder, "slowfast", tmp_path / "beam", manual_dir, beam=True)
    tfds_builds.assert_same_records(in_process, with_beam)
