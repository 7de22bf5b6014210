"""Input pipeline throughput: a built TFDS dataset -> ready training batches (examples per second).

Reads one split of a built dataset the way training does (`splits_lib.load_splits`: TFDS records -> resampling to n and
labels, once), then times whole training epochs of `input_pipeline.train_batches` (dataset creation included; epoch 0
is a warm-up). Prints one JSON object on its last line: the one-off read time per video, the per-epoch setup (creating
the dataset and waiting for its first batch), the steady time per example after the first batch, and the examples per
second over whole epochs.

The default is the synthetic benchmark dataset (2,800 videos with 1024-d features, Charades-like lengths), built with
`tfds build tfds_builders/nlvl_synthetic --config=large --data_dir=DIR`:

    python benchmarks/input_pipeline.py --data_dir=DIR [--dataset=nlvl_synthetic --dataset_config=large]
        [--split=train] [--batch_size=16] [--max_video_len=128] [--epochs=3]
"""

import json
import os
import tempfile
import time

import numpy as np
from absl import flags

from nlvl_tf import cli

_DATASET = flags.DEFINE_string("dataset", "nlvl_synthetic", "Built TFDS dataset name.")
_DATASET_CONFIG = flags.DEFINE_string("dataset_config", "large", "Its builder config.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir the dataset was built in (default: TFDS' own).")
_SPLIT = flags.DEFINE_string("split", "train", "Split to read.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Training batch size.")
_N = flags.DEFINE_integer("max_video_len", 128, "n: videos are resampled to at most n rows.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Timed epochs (after one warm-up epoch).")


def main(argv):
    cli.reject_extra_arguments(argv)
    from nlvl_tf import configs
    from nlvl_tf.data import input_pipeline, text
    from nlvl_tf.data import splits as splits_lib

    config = configs.base_config()
    config.data.update(
        dataset=_DATASET.value,
        dataset_config=_DATASET_CONFIG.value,
        data_dir=_DATA_DIR.value or "",
        max_video_len=_N.value,
        max_query_len=30,
        min_char_count=1,
    )
    config.model.word_dim = 50
    data = config.data
    started = time.perf_counter()
    split = splits_lib.load_splits(data, [_SPLIT.value])[_SPLIT.value]
    read_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as vocabulary_dir:
        data.train_split = _SPLIT.value
        input_pipeline.build_vocabulary({_SPLIT.value: split}, config).save(vocabulary_dir)
        encoder = text.QueryEncoder.from_config(vocabulary_dir, data)
        epoch_seconds, setup_seconds, examples = [], [], 0
        for epoch in range(_EPOCHS.value + 1):  # epoch 0 warms up (first traces, thread pools)
            started = time.perf_counter()
            batches = iter(input_pipeline.train_batches(split, encoder, data, _BATCH.value, config.seed, epoch))
            first = next(batches)
            first_batch = time.perf_counter()
            examples = len(first["query"]) + sum(len(batch["query"]) for batch in batches)
            if epoch:
                setup_seconds.append(first_batch - started)
                epoch_seconds.append(time.perf_counter() - started)
    steady_seconds = sum(epoch_seconds) - sum(setup_seconds)
    print(
        json.dumps(
            {
                "benchmark": "input_pipeline",
                "dataset": f"{data.dataset}/{data.dataset_config}",
                "split": _SPLIT.value,
                "videos": len(split.video_id),
                "records": split.num_records,
                "batch_size": _BATCH.value,
                "max_video_len": data.max_video_len,
                "feature_dim": split.feature_dim,
                "cpu_count": os.cpu_count(),
                "read_ms_per_video": round(1000 * read_seconds / len(split.video_id), 3),
                "epoch_setup_ms": round(1000 * np.mean(setup_seconds), 1),
                "steady_ms_per_example": round(1000 * steady_seconds / ((examples - _BATCH.value) * _EPOCHS.value), 4),
                "examples_per_second": round(examples * _EPOCHS.value / sum(epoch_seconds), 1),
            }
        )
    )


if __name__ == "__main__":
    cli.run(main)
