"""TACoS: TFDS checks for the `tan` (2D-TAN JSON) and `org` (TALL samples) configs, and the parsers' errors."""

import collections
import pathlib
import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from nlvl_tf.data import builder_common as common

from . import tacos_dataset_builder as tacos

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


def annotations_by_id(builder, split):
    return {ex["video_id"].decode(): ex["annotations"] for ex in tfds.as_numpy(builder.as_dataset(split=split))}


class TacosTanTest(tfds.testing.DatasetBuilderTestCase):
    """2D-TAN JSON through the (mocked) download; s17-d69 (train) has no feature file."""

    DATASET_CLASS = tacos.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["tan"]
    EXAMPLE_DIR = str(DUMMY / "tan")
    DL_DOWNLOAD_RESULT = {name: f"downloads/{name}" for name in tacos.TAN_SPLIT_FILES.values()}
    SPLITS = {"train": 2, "validation": 1, "test": 1}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        train = annotations_by_id(builder, "train")  # ids without ".avi"
        s14 = train["s14-d46"]
        # [8653, 9248] frames with num_frames 9233 at 29.4 fps: the end is clipped to the duration.
        np.testing.assert_allclose([s14["start"][0], s14["end"][0]], [8653 / 29.4, 9233 / 29.4], rtol=1e-6)
        self.assertEqual([q.decode() for q in s14["query"][1:]], ["She gets a pineapple."] * 2)  # duplicates kept
        self.assertEqual(train["s26-d23"]["query"][0].decode(), "The person washes the carrot in the sink.")
        report = builder.info.metadata[common.METADATA_REPORT_KEY]["train"]
        self.assertEqual((report["end_clipped"], report["videos_without_features"]), (1, 1))


class TacosOrgTest(tfds.testing.DatasetBuilderTestCase):
    """TALL samples from the manual dir (no public copy), frame counts through the (mocked) download."""

    DATASET_CLASS = tacos.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["org"]
    EXAMPLE_DIR = str(DUMMY / "org")
    DL_DOWNLOAD_RESULT = {tacos.FRAME_COUNTS_FILE: f"downloads/{tacos.FRAME_COUNTS_FILE}"}
    SPLITS = {"train": 1, "validation": 1, "test": 1}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        train = annotations_by_id(builder, "train")
        s13 = train["s13-d21"]  # 2955 frames
        self.assertEqual(
            [q.decode() for q in s13["query"]],
            [
                "He took out a cutting board.",
                "The person gets out a cutting board.",
                "He took out a cutting board.",
                "The person rinses the knife: then dries it.",  # split at the first ':' only
            ],
        )
        np.testing.assert_allclose(s13["start"], np.array([1, 1, 1, 2900]) / 29.4, rtol=1e-6)
        np.testing.assert_allclose(s13["end"], np.array([129, 129, 129, 2955]) / 29.4, rtol=1e-6)  # 3000 clipped
        validation = annotations_by_id(builder, "validation")
        self.assertEqual(validation["s26-d69"]["query"][1].decode(), "He cuts the carrot into slices.")
        self.assertEqual(builder.info.features["features"].shape, (None, 4096))


def test_org_durations_come_from_tall_frame_counts():
    counts = tacos.read_frame_counts(epath.Path(DUMMY / "org" / "downloads" / tacos.FRAME_COUNTS_FILE))
    assert counts == {"s13-d21": 2955, "s30-d43": 19807, "s26-d69": 20978, "s34-d69": 12952}
    split = tacos.read_tall_samples(epath.Path(DUMMY / "org" / "TACoS_train_samples.txt"), counts)
    assert split.videos["s30-d43"].duration == 19807 / 29.4
    assert split.num_annotations == 5 and split.num_end_clipped == 1


@pytest.mark.parametrize(
    "line, message",
    [
        ("s13-d21.avi_1_129 He took out a pan.#", "missing ':' between clip and sentences"),
        (
            "s13-d21.avi_129:He took out a pan.#",
            "expected '<video>.avi_<start_frame>_<end_frame>', got 's13-d21.avi_129'",
        ),
        ("s13-d21.avi_1_x9:He took out a pan.#", "end frame must be a number, got 'x9'"),
        ("s99-d99.avi_1_129:He took out a pan.#", "video 's99-d99' has no frame count in video_allframes_info.pkl"),
        ("s13-d21.avi_1_129:He took out a pan.##He washed it.#", "empty query"),
    ],
)
def test_malformed_tall_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "TACoS_val_samples.txt"
    path.write_text(f"s13-d21.avi_1_129:He took out a cutting board.#\n{line}\n")
    with pytest.raises(common.AnnotationFormatError, match=f"^{path}:2: {message}"):
        tacos.read_tall_samples(epath.Path(path), {"s13-d21": 2955})


def test_frame_counts_refuse_pickled_objects(tmp_path):
    path = tmp_path / tacos.FRAME_COUNTS_FILE
    path.write_bytes(pickle.dumps(collections.OrderedDict(s13=2955), protocol=0))  # names a class
    with pytest.raises(common.AnnotationFormatError, match="refusing to load collections.OrderedDict"):
        tacos.read_frame_counts(epath.Path(path))


def test_tan_fps_must_be_positive(tmp_path):
    path = tmp_path / "val.json"
    path.write_text('{"s13-d21.avi": {"timestamps": [[1, 2]], "sentences": ["x"], "fps": 0, "num_frames": 9}}')
    with pytest.raises(common.AnnotationFormatError, match=rf"^{path}: video 's13-d21.avi': fps must be > 0"):
        tacos.read_tan_file(epath.Path(path))


def test_negative_and_reversed_frames_are_clipped_counted_and_flagged(tmp_path):
    path = tmp_path / "val.json"
    path.write_text(
        '{"s13-d21.avi": {"timestamps": [[-30, 294], [600, 300]], "sentences": ["x", "y"], '
        '"fps": 29.4, "num_frames": 588}}'
    )
    annotations = tacos.read_tan_file(epath.Path(path)).videos["s13-d21"].annotations
    assert [(a.start, a.end, a.moment_valid) for a in annotations] == [
        (0.0, 294 / 29.4, True),
        (20.0, 300 / 29.4, False),
    ]
    samples = tmp_path / "TACoS_val_samples.txt"
    samples.write_text("s13-d21.avi_-30_129:He took out a pan.#\n")
    split = tacos.read_tall_samples(epath.Path(samples), {"s13-d21": 2955})
    assert split.videos["s13-d21"].annotations[0].start == 0.0 and split.num_start_clipped == 1
