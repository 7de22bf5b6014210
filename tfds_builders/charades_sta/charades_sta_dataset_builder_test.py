"""Charades-STA: TFDS checks on the dummy data (real-format lines and their edge cases), and parser errors."""

import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from nlvl_tf.data import builder_common as common

from . import charades_sta_dataset_builder as charades

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


def examples_by_id(builder, split):
    return {ex["video_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split=split))}


class CharadesStaI3dTest(tfds.testing.DatasetBuilderTestCase):
    """Annotations through the (mocked) download, features from the manual dir; UG6NT has no feature file."""

    DATASET_CLASS = charades.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["i3d"]
    DL_DOWNLOAD_RESULT = {source.file_name: f"downloads/{source.file_name}" for source in charades.ANNOTATION_SOURCES}
    SPLITS = {"train": 6, "test": 1}

    def _download_and_prepare_as_dataset(self, builder):
        # tfds' assertLogs(text, level) checks `text` is in what absl logged at that level.
        with self.assertLogs(
            "charades_sta train: 1 of 7 videos have no feature file and are left out (1 annotations); first: UG6NT",
            level="warning",
        ):
            super()._download_and_prepare_as_dataset(builder)
        report = builder.info.metadata[common.METADATA_REPORT_KEY]["train"]
        self.assertEqual((report["videos"], report["annotations"], report["invalid_moments"]), (6, 7, 2))

        train = examples_by_id(builder, "train")
        leol6 = train["LEOL6"]["annotations"]  # "LEOL6 8.0 7.0": both past the 6.25 s video
        self.assertAlmostEqual(float(train["LEOL6"]["duration"]), 6.25, places=5)
        np.testing.assert_allclose([leol6["start"][0], leol6["end"][0]], [6.25, 6.25])
        self.assertFalse(leol6["moment_valid"][0])
        self.assertEqual(float(train["Y6R7T"]["annotations"]["end"][0]), 29.42)  # 30.0 clipped; float64: exact
        self.assertEqual(
            train["0G2SC"]["annotations"]["query"][0].decode(),
            "person #1 smiled as person #2 walked through the doorway.",
        )
        self.assertEqual(len(train["MMRRV"]["annotations"]["query"]), 2)
        with open(DUMMY / "features" / "AO8RW.npy", "rb") as f:  # the test case only allows np.load on files
            np.testing.assert_array_equal(train["AO8RW"]["features"], np.load(f))


def test_read_splits_keeps_every_record_clips_and_flags():
    files = {s.file_name: epath.Path(DUMMY / "downloads" / s.file_name) for s in charades.ANNOTATION_SOURCES}
    splits = charades.read_splits(files)
    train, test = splits["train"], splits["test"]
    assert (len(train.videos), train.num_annotations, len(test.videos), test.num_annotations) == (7, 8, 1, 2)
    # LEOL6 8.0 > 6.25 s (start clipped); ends 30.0 > 29.42 (Y6R7T) and 7.0 > 6.25 (LEOL6) clipped;
    # invalid: LEOL6 (6.25, 6.25) and IOL8Q (20.9, 12.0), kept with moment_valid False.
    assert (train.num_start_clipped, train.num_end_clipped, train.num_invalid) == (1, 2, 2)
    assert train.videos["IOL8Q"].annotations == [
        common.Annotation("a person is throwing a bag out of the room.", 20.9, 12.0, False)
    ]
    assert train.videos["MMRRV"].annotations[1] == common.Annotation("person turning off the light.", 0.0, 3.18, True)
    assert train.videos["MMRRV"].duration == 26.54


@pytest.mark.parametrize(
    "line, message",
    [
        ("AO8RW 0.0 6.9 a person sits.", "missing '##' between times and sentence"),
        ("AO8RW 0.0##a person sits.", "expected '<video_id> <start> <end>' before '##', got 'AO8RW 0.0'"),
        ("AO8RW 0.0 six##a person sits.", "end must be a number, got 'six'"),
        ("AO8RW 0.0 6.9##   ", "empty query"),
        ("ZZZZZ 0.0 6.9##a person sits.", "video 'ZZZZZ' has no duration in charades.json"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "charades_sta_train.txt"
    path.write_text(f"AO8RW 0.0 6.9##a person is putting a book on a shelf.\n\n{line}\n")
    with pytest.raises(common.AnnotationFormatError, match=f"^{path}:3: {message}"):
        charades.read_sta_file(epath.Path(path), {"AO8RW": 33.67})


def test_negative_times_are_clipped_counted_and_flagged(tmp_path):
    path = tmp_path / "charades_sta_train.txt"
    path.write_text("AO8RW -1.5 6.9##a person sits.\nAO8RW -3.0 -1.0##a person stands.\n")
    split = charades.read_sta_file(epath.Path(path), {"AO8RW": 33.67})
    assert split.videos["AO8RW"].annotations == [
        common.Annotation("a person sits.", 0.0, 6.9, True),
        common.Annotation("a person stands.", 0.0, 0.0, False),
    ]
    assert (split.num_start_clipped, split.num_end_clipped, split.num_invalid) == (2, 1, 1)
