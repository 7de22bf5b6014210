"""Locating built TFDS datasets and reading their splits into `input_pipeline.SplitData`."""

import tensorflow_datasets as tfds
from absl import logging

from nlvl_tf import errors
from nlvl_tf.data import input_pipeline


def dataset_builder(data_config):
    """The TFDS builder of `data_config.dataset` / `dataset_config` in `data_config.data_dir` (config.data).

    Works from the built files alone (no builder code needed); a dataset that was not built is an error that says
    which `tfds build` command makes it.
    """
    dataset, builder_config, data_dir = data_config.dataset, data_config.dataset_config, data_config.data_dir
    name = f"{dataset}/{builder_config}" if builder_config else dataset
    command = f"tfds build tfds_builders/{dataset}" + (f" --config={builder_config}" if builder_config else "")
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
    except Exception as error:  # TFDS raises several types for "not found"
        raise errors.NotFoundError(
            f"dataset {name!r} is not built in {data_dir or 'the TFDS default data dir'}: run "
            f"`{command} --data_dir={data_dir or '<dir>'}` first ({str(error).splitlines()[0]})"
        ) from error
    if not builder.is_prepared():
        raise errors.NotFoundError(f"dataset {name!r} in {builder.data_dir} is not prepared: run `{command}` first")
    return builder


def available_splits(data_config):
    return tuple(dataset_builder(data_config).info.splits.keys())


def feature_dim(data_config):
    """D, the feature dimension the dataset was built with."""
    return int(dataset_builder(data_config).info.features["features"].shape[-1])


def load_splits(data_config, split_names):
    """{split: SplitData} for the requested splits of config.data's dataset."""
    builder = dataset_builder(data_config)
    splits = {}
    for name in split_names:
        if name not in builder.info.splits:
            raise errors.InputError(
                f"dataset {builder.info.full_name} has no split {name!r}; it has {sorted(builder.info.splits.keys())}"
            )
        logging.info("reading %s split %s", builder.info.full_name, name)
        splits[name] = input_pipeline.SplitData.from_videos(builder.as_dataset(split=name), data_config)
    return splits
