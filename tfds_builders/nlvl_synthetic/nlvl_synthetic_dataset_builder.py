"""nlvl_synthetic: procedurally generated, learnable NLVL videos and queries; no download, no manual dir.

The generator (`generator.py`) makes videos of (action, object) events with visual signatures and
templated queries that name one event among distractors; this builder stores them in the feature
spec every NLVL builder shares, so the same input pipeline, training and evaluation code run on it.
"""

import dataclasses
import functools

import numpy as np
import tensorflow_datasets as tfds

from nlvl_tf.data import builder_common as common

from . import generator


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    """A config is a generator spec; the spec fixes every value, so the build is reproducible."""

    spec: generator.SyntheticSpec | None = None


class Builder(common.ScalableBuilder):
    """Synthetic NLVL dataset: one example per video with its queries, features at 2 rows per second."""

    VERSION = common.SPEC_VERSION
    RELEASE_NOTES = common.SPEC_RELEASE_NOTES
    BUILDER_CONFIGS = [
        SyntheticConfig(
            name="small",
            spec=generator.SMALL,
            description="700 videos, D=32, mostly under 128 rows with 1 in 50 longer than 600: tests and CPU demos.",
        ),
        SyntheticConfig(
            name="large",
            spec=generator.LARGE,
            description="2,800 videos, D=1024, 1 in 20 longer than 600 rows: benchmarks.",
        ),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=common.video_features(self.builder_config.spec.feature_dim))

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in generator.SPLITS}

    def _generate_examples(self, split):
        spec = self.builder_config.spec
        indices = range(spec.num_videos[generator.SPLITS.index(split)])
        make = functools.partial(video_example, spec=spec, split=split, protos=generator.prototypes(spec))
        return self.examples(split, indices, make)


def video_example(index: int, spec: generator.SyntheticSpec, split: str, protos: np.ndarray):
    """The (key, example) pair of video `index` of a split (`generator.generate_video`)."""
    video = generator.generate_video(spec, split, index, protos)
    yield (
        video.video_id,
        {
            "video_id": video.video_id,
            "duration": video.duration,
            "features": video.features,
            "annotations": [_annotation(video, query) for query in video.queries],
        },
    )


def _annotation(video: generator.SyntheticVideo, query: generator.Query) -> dict:
    start, end = video.moment(query)
    return {"query": query.text, "start": start, "end": end, "moment_valid": True}
