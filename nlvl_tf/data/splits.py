"""Locating built TFDS datasets and reading their splits into `input_pipeline.SplitData`."""

import tensorflow_datasets as tfds
from absl import logging

from nlvl_tf.data import input_pipeline


def dataset_builder(config):
    """The TFDS builder of `config.dataset` / `config.dataset_config` in `config.data_dir`.

    Works from the built files alone (no builder code needed); a dataset that was not built is an error that says
    which `tfds build` command makes it.
    """
    name = f"{config.dataset}/{config.dataset_config}" if config.dataset_config else config.dataset
    try:
        builder = tfds.builder(name, data_dir=config.data_dir or None)
    except Exception as error:  # TFDS raises several types for "not found"
        raise FileNotFoundError(
            f"dataset {name!r} is not built in {config.data_dir or 'the TFDS default data dir'}: run "
            f"`tfds build tfds_builders/{config.dataset} --config={config.dataset_config} "
            f"--data_dir={config.data_dir or '<dir>'}` first ({str(error).splitlines()[0]})"
        ) from error
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"dataset {name!r} in {builder.data_dir} is not prepared: run `tfds build "
            f"tfds_builders/{config.dataset} --config={config.dataset_config}` first"
        )
    return builder


def available_splits(config):
    return tuple(dataset_builder(config).info.splits.keys())


def load_splits(config, split_names):
    """{split: SplitData} for the requested splits; checks and fills `config.video_feature_dim`."""
    builder = dataset_builder(config)
    feature_dim = builder.info.features["features"].shape[-1]
    if config.video_feature_dim and config.video_feature_dim != feature_dim:
        raise ValueError(
            f"config.video_feature_dim={config.video_feature_dim} but dataset {builder.info.full_name} "
            f"has {feature_dim}-d features"
        )
    config.video_feature_dim = feature_dim
    splits = {}
    for name in split_names:
        if name not in builder.info.splits:
            raise ValueError(
                f"dataset {builder.info.full_name} has no split {name!r}; it has {sorted(builder.info.splits.keys())}"
            )
        logging.info("reading %s split %s", builder.info.full_name, name)
        splits[name] = input_pipeline.SplitData.from_videos(builder.as_dataset(split=name), config)
    return splits
