"""The shared parsing rules, clipping, feature checks and annotation-file resolution of the NLVL builders."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from etils import epath

from nlvl_tf.data import builder_common as common


def test_parse_number_and_as_number_accept_numbers_only():
    assert common.parse_number("3.18", "f:1", "end") == 3.18
    assert common.as_number(0, "f", "start") == 0.0 and isinstance(common.as_number(0, "f", "start"), float)
    for bad in ("six", "", "nan", "inf"):
        with pytest.raises(common.AnnotationFormatError, match=r"^f:7: start must be"):
            common.parse_number(bad, "f:7", "start")
    for bad in ("4.2", True, None, float("nan"), [1]):
        with pytest.raises(common.AnnotationFormatError, match="start must be a finite number"):
            common.as_number(bad, "f", "start")


def test_clean_query_strips_and_refuses_empty():
    assert common.clean_query("\n  The monkey drives the boat. ", "w") == "The monkey drives the boat."
    with pytest.raises(common.AnnotationFormatError, match=r"^f:3: empty query"):
        common.clean_query(" \n", "f:3")
    with pytest.raises(common.AnnotationFormatError, match="query must be a string"):
        common.clean_query(12, "f:3")


def test_split_annotations_clip_count_and_flag():
    split = common.SplitAnnotations()
    a = split.add("v", 10.0, " a ", -0.5, 4.0, "f:1")  # start < 0: clipped, counted
    b = split.add("v", 10.0, "b", 8.0, 10.0000000001, "f:2")  # float noise: clipped, not counted
    c = split.add("v", 10.0, "c", 11.0, 12.0, "f:3")  # both past the end: start == end == 10, invalid
    d = split.add("v", 10.0, "d", 6.0, 5.0, "f:4")  # start > end inside the video: kept, invalid
    e = split.add("w", 300.0, "e", 100.0, 100.000001, "f:5")  # equal in float32, kept apart in float64: valid
    assert a == common.Annotation("a", 0.0, 4.0, True)
    assert b == common.Annotation("b", 8.0, 10.0, True)
    assert c == common.Annotation("c", 10.0, 10.0, False)
    assert d == common.Annotation("d", 6.0, 5.0, False)
    assert e == common.Annotation("e", 100.0, 100.000001, True)
    assert (split.num_start_clipped, split.num_end_clipped, split.num_invalid) == (2, 1, 2)
    assert list(split.videos) == ["v", "w"] and split.num_annotations == 5
    assert common.split_report(split, ["w"]) == {
        "videos": 1,
        "annotations": 4,
        "annotations_in_files": 5,
        "start_clipped": 2,
        "end_clipped": 1,
        "invalid_moments": 2,
        "videos_without_features": 1,
        "first_videos_without_features": ["w"],
    }


def test_split_annotations_refuse_bad_or_conflicting_durations():
    split = common.SplitAnnotations()
    split.add("v", 10.0, "a", 0.0, 1.0, "f:1")
    with pytest.raises(
        common.AnnotationFormatError, match=r"^f:2: video 'v' has duration 11.0, earlier records said 10.0"
    ):
        split.add("v", 11.0, "a", 0.0, 1.0, "f:2")
    with pytest.raises(common.AnnotationFormatError, match=r"^f:3: video 'w' has duration 0.0, must be > 0"):
        split.add("w", 0.0, "a", 0.0, 1.0, "f:3")


def test_json_errors_name_file_and_place(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"v_a": {"duration": 5.0,\n "timestamps": [[0, 1]] "sentences": ["x"]}}')
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}:2:25: invalid JSON"):
        list(common.json_videos(epath.Path(path)))
    path.write_text(json.dumps({"v_a": {"timestamps": [[0, 1], [1, 2]], "sentences": ["x"]}}))
    ((key, entry, where),) = common.json_videos(epath.Path(path))
    with pytest.raises(common.AnnotationFormatError, match=r"video 'v_a': 2 timestamps but 1 sentences"):
        list(common.timestamped_sentences(entry, where))
    with pytest.raises(common.AnnotationFormatError, match=r"video 'v_a': missing field 'duration'"):
        common.json_field(entry, "duration", where)
    bad_pair = {"timestamps": [[0, 1], [2]], "sentences": ["x", "y"]}
    with pytest.raises(common.AnnotationFormatError, match=r"annotation 1: timestamp must be \[start, end\]"):
        list(common.timestamped_sentences(bad_pair, where))
    path.write_text("[1, 2]")
    with pytest.raises(common.AnnotationFormatError, match="expected a JSON object keyed by video id"):
        list(common.json_videos(epath.Path(path)))


def test_annotation_bytes_that_are_not_utf8_are_named_with_their_line(tmp_path):
    path = tmp_path / "charades_sta_train.txt"
    path.write_bytes("AO8RW 0.0 6.9##a person sits.\nAO8RW 1.0 2.0##a caf\u00e9 ".encode() + b"\xff\xfe door.\n")
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}:2: not UTF-8 text \(.*byte 0xff"):
        list(common.text_lines(epath.Path(path)))
    path.write_bytes(b'{"v_a": {"duration": 5.0,\n "sentences": ["a \xc3"]}}')
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}:2: not UTF-8 text"):
        common.read_json(epath.Path(path))


def test_load_features_casts_to_float32(tmp_path):
    path = epath.Path(tmp_path / "v.npy")
    values = np.arange(6, dtype=np.float64).reshape(3, 2) / 7
    np.save(path, values)
    loaded = common.load_features(path, 2)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.astype(np.float32))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((3, 5), np.float32), r"must have shape \[T, 4\], got \[3, 5\]"),
        (np.zeros((0, 4), np.float32), "zero rows"),
        (np.zeros(4, np.float32), r"must have shape \[T, 4\], got \[4\]"),
        (np.zeros((3, 4), np.int64), "must be floating point"),
        (np.array([[0, 0, np.nan, 0]], np.float32), "NaN or Inf"),
        (np.array([[0, 0, 1e300, 0]], np.float64), "NaN or Inf"),  # finite in float64, Inf in float32
    ],
)
def test_load_features_errors_name_the_file(tmp_path, array, message):
    path = epath.Path(tmp_path / "v_bad.npy")
    np.save(path, array)
    with pytest.raises(ValueError, match=rf"^{path}: .*{message}"):
        common.load_features(path, 4)


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_text("not an array"),
        lambda path: path.write_bytes(b""),  # zero-length file
        lambda path: path.write_bytes(path.read_bytes()[:60]),  # cut inside the header
        lambda path: path.write_bytes(path.read_bytes()[:-4]),  # cut inside the data
    ],
)
def test_load_features_unreadable_file(tmp_path, damage):
    path = epath.Path(tmp_path / "v.npy")
    np.save(path, np.ones((3, 4), np.float32))
    damage(path)
    with pytest.raises(ValueError, match=rf"^{path}: cannot read a .npy array"):
        common.load_features(path, 4)


def test_load_features_takes_a_one_row_video(tmp_path):
    path = epath.Path(tmp_path / "v.npy")
    np.save(path, np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(common.load_features(path, 4), np.ones((1, 4)))


def test_tfds_build_names_the_malformed_annotation_and_leaves_no_partial_dataset(tmp_path):
    """`tfds build` runs TFDS's main, not ours (its traceback stays): the error's last line names file:line."""
    dummy = pathlib.Path(__file__).parents[1] / "tfds_builders" / "charades_sta" / "dummy_data"
    shutil.copytree(dummy / "downloads", tmp_path / "manual")
    shutil.copytree(dummy / "features", tmp_path / "manual" / "features")
    with open(tmp_path / "manual" / "charades_sta_train.txt", "a", encoding="utf-8") as f:
        f.write("AO8RW 0.0 six##a person sits.\n")
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "tfds"),
            "build",
            str(dummy.parent),
            f"--manual_dir={tmp_path / 'manual'}",
            f"--data_dir={tmp_path / 'data'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"nlvl_tf.data.builder_common.AnnotationFormatError: {tmp_path / 'manual' / 'charades_sta_train.txt'}:10: "
        "end must be a number, got 'six'"
    )
    assert not (tmp_path / "data" / "charades_sta" / "i3d").exists() or not any(
        (tmp_path / "data" / "charades_sta" / "i3d").iterdir()
    )


class FakeDownloadManager:
    """The two members `resolve_annotation_files` uses: a manual dir and `download({name: url})`."""

    def __init__(self, manual_dir, download_dir):
        self.manual_dir, self.download_dir, self.requested = manual_dir, download_dir, None

    def download(self, urls):
        self.requested = urls
        return {name: self.download_dir / name for name in urls}


def test_resolve_annotation_files_prefers_manual_copies(tmp_path):
    manual, downloads = epath.Path(tmp_path / "manual"), epath.Path(tmp_path / "downloads")
    manual.mkdir()
    (manual / "train.txt").write_text("local")
    sources = [
        common.AnnotationSource("train.txt", "https://x/train.txt"),
        common.AnnotationSource("test.txt", "https://x/test.txt"),
    ]
    dl_manager = FakeDownloadManager(manual, downloads)
    paths = common.resolve_annotation_files(dl_manager, sources)
    assert paths == {"train.txt": manual / "train.txt", "test.txt": downloads / "test.txt"}
    assert dl_manager.requested == {"test.txt": "https://x/test.txt"}
    with pytest.raises(FileNotFoundError, match=r"samples.txt not found: samples.txt has no public download"):
        common.resolve_annotation_files(dl_manager, [common.AnnotationSource("samples.txt")])
