"""Times the trainer's own training step (`nlvl_tf.training.make_train_step`) on random inputs.

Settings are the authors' Charades-STA defaults (d = 128, 8 heads, char CNN, video dim 1024, batch 16) with videos
~95% full, as in the figures of the authors' code this project is compared with. Prints one JSON object on its last
line: median and p10/p90 seconds per step after warm-up, samples/s, peak RSS, and the environment in force.

    python benchmarks/train_step.py --model=vslnet --n=128 --batch_size=16 [--xla] [--steps=20]
"""

import json
import os
import resource
import time

import numpy as np
from absl import app
from absl import flags

_MODEL = flags.DEFINE_enum("model", "vslnet", ["vslbase", "vslnet", "vslnet_l"], "Model family.")
_N = flags.DEFINE_integer("n", 128, "Video length n (max_video_len).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Global batch size.")
_XLA = flags.DEFINE_bool("xla", False, "jit_compile the step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps (after warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps first (tracing, compilation, allocator warm-up).")
_THREADS = flags.DEFINE_integer("threads", 0, "intra/inter-op threads (0 = TensorFlow's default).")

SCALES = {300: (60, 75, 100, 150), 600: (100, 120, 150, 200), 1200: (200, 240, 300, 400), 128: (32, 64)}


def benchmark_config(model, n):
    """The authors' Charades-STA model settings at length n (VSLNet-L: the paper's scales for n)."""
    from nlvl_tf import configs

    config = configs.base_config()
    config.update(dict(model=model, max_video_len=n, max_query_len=20, max_word_len=16, video_feature_dim=1024))
    config.clip_lengths = SCALES.get(n, (n // 4, n // 2))
    return config


def random_batch(config, batch_size, vocabulary_size, num_chars, seed=0):
    """Videos 90-100% of n long, queries of 6-12 words: the shape of the authors' benchmark inputs."""
    from nlvl_tf import labels

    rng = np.random.default_rng(seed)
    n, m, w = config.max_video_len, config.max_query_len, config.max_word_len
    lengths = rng.integers(int(0.9 * n), n + 1, size=batch_size).astype(np.int32)
    word_ids = np.zeros((batch_size, m), np.int32)
    char_ids = np.zeros((batch_size, m, w), np.int32)
    for row in range(batch_size):
        words = rng.integers(6, 13)
        word_ids[row, :words] = rng.integers(2, vocabulary_size + 2, size=words)
        char_ids[row, :words, :6] = rng.integers(2, num_chars, size=(words, 6))
    starts = (lengths * rng.uniform(0, 0.5, size=batch_size)).astype(np.int32)
    ends = np.minimum(starts + (lengths * rng.uniform(0.1, 0.4, size=batch_size)).astype(np.int32), lengths - 1)
    highlight = np.stack([labels.highlight_labels(s, e, length, n).numpy()
                          for s, e, length in zip(starts, ends, lengths)])
    return {"video_features": rng.normal(size=(batch_size, n, config.video_feature_dim)).astype(np.float32),
            "video_length": lengths, "word_ids": word_ids, "char_ids": char_ids, "start_index": starts,
            "end_index": ends, "highlight": highlight.astype(np.float32)}


def environment():
    """Settings that change speed, reported with every figure."""
    keys = ("GLIBC_TUNABLES", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "MALLOC_ARENA_MAX",
            "LD_PRELOAD", "XLA_FLAGS")
    return {key: os.environ[key] for key in keys if key in os.environ}


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(durations, batch_size):
    durations = np.asarray(durations)
    median = float(np.median(durations))
    return {"median_s": median, "p10_s": float(np.percentile(durations, 10)),
            "p90_s": float(np.percentile(durations, 90)), "samples_per_s": batch_size / median}


def main(argv):
    del argv
    import tensorflow as tf

    if _THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
        tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    from nlvl_tf import models
    from nlvl_tf import training

    config = benchmark_config(_MODEL.value, _N.value)
    vocabulary_size, num_chars = 1300, 40
    model = models.build_model(config, vocabulary_size, num_chars,
                               np.random.default_rng(0).normal(size=(vocabulary_size, 300)).astype(np.float32))
    optimizer = training.make_optimizer(config, total_steps=10_000)
    optimizer.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    step = training.make_train_step(model, optimizer, strategy, config, jit_compile=_XLA.value)
    batch = {key: tf.constant(value) for key, value in
             random_batch(config, _BATCH.value, vocabulary_size, num_chars).items()}
    for _ in range(_WARMUP.value):
        float(step(batch)["loss"])
    durations = []
    for _ in range(_STEPS.value):
        started = time.perf_counter()
        float(step(batch)["loss"])
        durations.append(time.perf_counter() - started)
    result = {"benchmark": "train_step", "model": _MODEL.value, "n": _N.value, "batch_size": _BATCH.value,
              "xla": _XLA.value, "steps": _STEPS.value, **summarize(durations, _BATCH.value),
              "peak_rss_mib": peak_rss_mib(), "threads": _THREADS.value or "default", "env": environment()}
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
