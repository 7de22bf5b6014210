"""TFDS checks of nlvl_synthetic: each config builds with no download and stores the generator's videos."""

import dataclasses
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from . import generator, nlvl_synthetic_dataset_builder

_HERE = str(pathlib.Path(__file__).parent)  # no dummy data: the builder downloads nothing


class SmallTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = nlvl_synthetic_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["small"]
    EXAMPLE_DIR = _HERE
    SPLITS = {"train": 500, "validation": 100, "test": 100}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        # The stored example equals the generator's video, to float32.
        video = generator.generate_video(generator.SMALL, "test", 3)
        stored = next(ex for ex in tfds.as_numpy(builder.as_dataset(split="test")) if ex["video_id"] == b"test_00003")
        np.testing.assert_array_equal(stored["features"], video.features)
        self.assertAlmostEqual(float(stored["duration"]), video.duration, places=5)
        annotations = stored["annotations"]
        self.assertEqual([q.decode() for q in annotations["query"]], [q.text for q in video.queries])
        np.testing.assert_allclose(
            np.stack([annotations["start"], annotations["end"]], 1), [video.moment(q) for q in video.queries]
        )
        self.assertTrue(annotations["moment_valid"].all())


class LargeTest(tfds.testing.DatasetBuilderTestCase):
    """The `large` generator settings (D=1024, 1 in 20 videos long) with few videos, to stay fast."""

    DATASET_CLASS = nlvl_synthetic_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = [
        nlvl_synthetic_dataset_builder.SyntheticConfig(
            name="large_27_videos",  # TFDS refuses a custom config named like a registered one
            spec=dataclasses.replace(generator.LARGE, num_videos=(21, 3, 3)),
            description="The large config's generator settings with 27 videos.",
        )
    ]
    EXAMPLE_DIR = _HERE
    SPLITS = {"train": 21, "validation": 3, "test": 3}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        lengths = [len(ex["features"]) for ex in tfds.as_numpy(builder.as_dataset(split="train"))]
        self.assertEqual(sum(n > 600 for n in lengths), 1)  # train_00010
        self.assertEqual(builder.info.features["features"].shape, (None, 1024))
