"""ActivityNet Captions: TFDS checks per config on dummy data (real records with the format's edge cases)."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from nlvl_tf.data import builder_common as common

from . import activitynet_captions_dataset_builder as anet

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
_DOWNLOADS = {source.file_name: f"downloads/{source.file_name}" for source in anet.ANNOTATION_SOURCES}
# train: v_ehGHCYKzyZ8 has no feature file; validation (val_2) shares its video with test (val_1).
_SPLITS = {"train": 6, "validation": 1, "test": 2}


class ActivityNetCaptionsI3dTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = anet.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["i3d"]
    DL_DOWNLOAD_RESULT = _DOWNLOADS
    SPLITS = _SPLITS

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        train = {ex["video_id"].decode(): ex["annotations"] for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
        np.testing.assert_array_equal(train["v_0bosp4-pyTM"]["moment_valid"], [True, False])  # 61.29 > 60.71
        np.testing.assert_array_equal(train["v_N7ppHQNikv8"]["moment_valid"], [True, False])  # 34.77 == 34.77
        np.testing.assert_allclose(train["v_G836MDBhEpg"]["end"], [61.13, 61.13])  # 61.14 clipped to the duration
        self.assertEqual(
            [q.decode() for q in train["v_mIi5fkvHDAo"]["query"]],
            ["Monkeys are skiing behind a boat in the water.", "The monkey driving the speed boat is shown again."],
        )  # "  ..." and "\n..." stripped
        self.assertIn("piñata", train["v_M_LSDRzVN38"]["query"][0].decode())
        report = builder.info.metadata[common.METADATA_REPORT_KEY]
        # Only v_G836MDBhEpg's 61.14 > 61.13 counts; v_MKmrqcoCZ-M's 70.29 > 70.28999999999999 is float noise.
        self.assertEqual((report["train"]["end_clipped"], report["train"]["invalid_moments"]), (2, 2))
        self.assertEqual(report["train"]["first_videos_without_features"], ["v_ehGHCYKzyZ8"])


class ActivityNetCaptionsC3dTest(tfds.testing.DatasetBuilderTestCase):
    """Same annotations, 500-d C3D features from a manual dir of their own (`dummy_data/c3d/`)."""

    DATASET_CLASS = anet.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["c3d"]
    EXAMPLE_DIR = str(DUMMY / "c3d")
    DL_DOWNLOAD_RESULT = {name: f"../{path}" for name, path in _DOWNLOADS.items()}
    SPLITS = _SPLITS

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        example = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
        self.assertEqual(example["features"].shape[1], 500)


def test_val_1_is_test_and_val_2_is_validation(tmp_path):
    files = {s.file_name: epath.Path(DUMMY / "downloads" / s.file_name) for s in anet.ANNOTATION_SOURCES}
    builder = anet.Builder(config="i3d", data_dir=str(tmp_path))
    splits = builder.read_annotation_files(files)
    assert list(splits["test"].videos) == ["v_uqiMw7tQ1Cc", "v_bXdq2zI1Ms0"]
    assert splits["test"].videos["v_uqiMw7tQ1Cc"].annotations[0].query == "A weight lifting tutorial is given."
    assert splits["validation"].videos["v_uqiMw7tQ1Cc"].annotations[0].query.startswith("Two men both dressed")


def test_mismatched_lists_name_file_and_video(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"v_a": {"duration": 9.5, "timestamps": [[0, 4.14], [4, 9]], "sentences": ["x"]}}))
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}: video 'v_a': 2 timestamps but 1 sentences"):
        anet.read_captions_file(epath.Path(path))
    path.write_text(json.dumps({"v_a": {"duration": "9.5", "timestamps": [[0, 4.14]], "sentences": ["x"]}}))
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}: video 'v_a': duration must be a finite number"):
        anet.read_captions_file(epath.Path(path))


def test_negative_reversed_and_overlong_times_are_clipped_counted_and_flagged(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(
        json.dumps(
            {"v_a": {"duration": 20.0, "timestamps": [[-2, 5], [7, 3], [4, 30.5]], "sentences": ["x", "y", "z"]}}
        )
    )
    split = anet.read_captions_file(epath.Path(path))
    assert split.videos["v_a"].annotations == [
        common.Annotation("x", 0.0, 5.0, True),
        common.Annotation("y", 7.0, 3.0, False),
        common.Annotation("z", 4.0, 20.0, True),
    ]
    assert (split.num_start_clipped, split.num_end_clipped, split.num_invalid) == (1, 1, 1)
