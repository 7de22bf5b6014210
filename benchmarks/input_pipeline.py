"""Input pipeline throughput: a dataset of videos -> ready training batches (examples per second).

Builds an in-memory TFDS-style dataset of synthetic videos (Charades-like: 40-400 raw rows, 1-4
queries each), reads it once with `SplitData.from_videos` (resampling + labels), then times whole
training epochs of `train_batches` (dataset creation included; epoch 0 is a warm-up). Prints one JSON
object on its last line: the one-off read time per video, the per-epoch setup (creating the dataset
and waiting for its first batch), the steady time per example after the first batch, and the
examples per second over whole epochs.

    python benchmarks/input_pipeline.py [--videos 1000] [--batch_size 16] [--max_video_len 128]
"""

import argparse
import json
import os
import tempfile
import time

import ml_collections
import numpy as np
import tensorflow as tf

from nlvl_tf import input_pipeline, text

_WORDS = "person opens the door walks into a room holding cup of coffee and sits down on chair".split()


def synthetic_videos(num_videos, feature_dim, seed=0):
    """A tf.data.Dataset of videos in the TFDS feature spec, with random features and queries."""
    rng = np.random.default_rng(seed)
    # Videos are windows of one random pool, so memory stays at the pool's size.
    pool = rng.standard_normal((2000, feature_dim), dtype=np.float32)
    videos = []
    for index in range(num_videos):
        num_rows = int(rng.integers(40, 400))
        first_row = int(rng.integers(0, len(pool) - num_rows))
        num_queries = int(rng.integers(1, 5))
        duration = num_rows / 2.0
        start = rng.uniform(0, duration * 0.7, num_queries)
        videos.append(
            {
                "video_id": f"video{index}",
                "duration": np.float32(duration),
                "features": pool[first_row : first_row + num_rows],
                "annotations": {
                    "query": [" ".join(rng.choice(_WORDS, int(rng.integers(5, 15)))) + "." for _ in range(num_queries)],
                    "start": start.astype(np.float32),
                    "end": (start + rng.uniform(1, duration * 0.3, num_queries)).astype(np.float32),
                },
            }
        )
    signature = {
        "video_id": tf.TensorSpec([], tf.string),
        "duration": tf.TensorSpec([], tf.float32),
        "features": tf.TensorSpec([None, feature_dim], tf.float32),
        "annotations": {
            "query": tf.TensorSpec([None], tf.string),
            "start": tf.TensorSpec([None], tf.float32),
            "end": tf.TensorSpec([None], tf.float32),
        },
    }
    return tf.data.Dataset.from_generator(lambda: iter(videos), output_signature=signature)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--feature_dim", type=int, default=1024)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_video_len", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    config = ml_collections.ConfigDict(
        {
            "max_video_len": args.max_video_len,
            "max_query_len": 30,
            "max_word_len": 16,
            "batch_size": args.batch_size,
            "word_dim": 50,
            "min_char_count": 1,
        }
    )
    started = time.perf_counter()
    data = input_pipeline.SplitData.from_videos(synthetic_videos(args.videos, args.feature_dim), config)
    read_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as vocabulary_dir:
        input_pipeline.build_vocabulary({"train": data}, config).save(vocabulary_dir)
        encoder = text.QueryEncoder(vocabulary_dir, config.max_query_len, config.max_word_len)
        epoch_seconds, setup_seconds, examples = [], [], 0
        for epoch in range(args.epochs + 1):  # epoch 0 warms up (first traces, thread pools)
            started = time.perf_counter()
            batches = iter(input_pipeline.train_batches(data, encoder, config, epoch))
            first = next(batches)
            first_batch = time.perf_counter()
            examples = len(first["query"]) + sum(len(batch["query"]) for batch in batches)
            if epoch:
                setup_seconds.append(first_batch - started)
                epoch_seconds.append(time.perf_counter() - started)
    steady_seconds = sum(epoch_seconds) - sum(setup_seconds)
    result = {
        "benchmark": "input_pipeline",
        "videos": args.videos,
        "records": data.num_records,
        "batch_size": args.batch_size,
        "max_video_len": args.max_video_len,
        "feature_dim": args.feature_dim,
        "cpu_count": os.cpu_count(),
        "read_ms_per_video": round(1000 * read_seconds / args.videos, 3),
        "epoch_setup_ms": round(1000 * np.mean(setup_seconds), 1),
        "steady_ms_per_example": round(1000 * steady_seconds / ((examples - args.batch_size) * args.epochs), 4),
        "examples_per_second": round(examples * args.epochs / sum(epoch_seconds), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
