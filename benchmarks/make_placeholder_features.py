r"""Writes a manual dir with placeholder features for every video of a dataset's annotation files.

The real I3D/C3D features cannot be downloaded here, but the builders need one feature file per
video. This parses the annotation files with the dataset's own builder code, writes a seeded random
`features/<video_id>.npy` of shape [num_rows, D] (D from the builder config) for every video id, and
links the annotation files into the manual dir so `tfds build` needs no download:

  python benchmarks/make_placeholder_features.py --dataset=charades_sta \
      --annotation_dir=DIR_WITH_THE_CHARADES_STA_ANNOTATION_FILES --manual_dir=/tmp/manual/charades_sta
  tfds build tfds_builders/charades_sta --manual_dir=/tmp/manual/charades_sta --data_dir=/tmp/tfds
"""

import importlib
import pathlib
import sys
import tempfile

import numpy as np
from absl import flags

from nlvl_tf import cli, errors

_TFDS_BUILDERS = pathlib.Path(__file__).resolve().parents[1] / "tfds_builders"

_DATASET = flags.DEFINE_enum("dataset", None, ["charades_sta", "activitynet_captions", "tacos"], "Builder name.")
_CONFIG = flags.DEFINE_string("config", None, "Builder config (default: the builder's first).")
_ANNOTATION_DIR = flags.DEFINE_string("annotation_dir", None, "Folder holding the annotation files.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "Manual dir to write (features/ and annotation links).")
_NUM_ROWS = flags.DEFINE_integer("num_rows", 4, "Feature rows T per video (small keeps builds fast).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the placeholder values.")


def load_builder(dataset: str, config: str | None, data_dir: str):
    """Imports `tfds_builders/<dataset>` the way `tfds build` does and returns a builder instance."""
    sys.path.insert(0, str(_TFDS_BUILDERS))
    module = importlib.import_module(f"{dataset}.{dataset}_dataset_builder")
    return module.Builder(config=config, data_dir=data_dir)


def write_placeholder_manual_dir(
    builder, annotation_dir: pathlib.Path, manual_dir: pathlib.Path, num_rows: int, seed: int
) -> int:
    """Links the annotation files into `manual_dir` and writes one feature file per video; returns the video count."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for source in builder.annotation_sources():
        original, link = annotation_dir / source.file_name, manual_dir / source.file_name
        if not original.exists():
            raise errors.NotFoundError(f"{original} not found ({builder.name}/{builder.builder_config.name} reads it)")
        if not link.exists():
            link.symlink_to(original.resolve())
        files[source.file_name] = link
    video_ids = {vid for split in builder.read_annotation_files(files).values() for vid in split.videos}
    feature_dir = manual_dir / "features"
    feature_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for vid in sorted(video_ids):
        features = rng.standard_normal((num_rows, builder.builder_config.feature_dim), np.float32)
        np.save(feature_dir / f"{vid}.npy", features)
    return len(video_ids)


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as unused_data_dir:  # a builder instance needs one; nothing is built
        builder = load_builder(_DATASET.value, _CONFIG.value, unused_data_dir)
        count = write_placeholder_manual_dir(
            builder, pathlib.Path(_ANNOTATION_DIR.value), pathlib.Path(_MANUAL_DIR.value), _NUM_ROWS.value, _SEED.value
        )
    print(
        f"{count} videos: {_MANUAL_DIR.value}/features/<video_id>.npy, shape [{_NUM_ROWS.value}, "
        f"{builder.builder_config.feature_dim}] ({builder.name}/{builder.builder_config.name})"
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "annotation_dir", "manual_dir"])
    cli.run(main)
