"""Building a TFDS dataset in process or with Apache Beam (DirectRunner), and comparing two builds record by record."""

import numpy as np
import tensorflow_datasets as tfds


def build(builder_class, config, data_dir, manual_dir=None, beam=False):
    """Builds `builder_class(config)` into `data_dir`; with `beam`, through a Beam pipeline on the DirectRunner, as
    `tfds build --beam_pipeline_options=runner=DirectRunner` does."""
    options = None
    if beam:
        import apache_beam

        options = apache_beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
    builder = builder_class(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir and str(manual_dir), beam_options=options)
    )
    return builder


def examples_by_key(builder, split):
    """{video_id: decoded example} of a split (video_id is every NLVL builder's key)."""
    return {example["video_id"]: example for example in tfds.as_numpy(builder.as_dataset(split=split))}


def assert_same_records(expected, actual):
    """The two builds hold the same splits and, per split, the same examples under the same keys, value for value
    (NaN equal to NaN)."""
    assert sorted(expected.info.splits.keys()) == sorted(actual.info.splits.keys())
    for split in expected.info.splits.keys():
        want, got = examples_by_key(expected, split), examples_by_key(actual, split)
        assert sorted(want) == sorted(got), split
        for key, example in want.items():
            _assert_same(example, got[key], f"{split}/{key!r}")


def _assert_same(want, got, where):
    if isinstance(want, dict):
        assert sorted(want) == sorted(got), where
        for name in want:
            _assert_same(want[name], got[name], f"{where}/{name}")
    else:
        want, got = np.asarray(want), np.asarray(got)
        assert want.dtype == got.dtype, where
        np.testing.assert_array_equal(want, got, err_msg=where)
