"""Settings and inputs shared by the benchmark scripts (no flags here: each script defines its own)."""

import os
import resource

import numpy as np

SCALES = {300: (60, 75, 100, 150), 600: (100, 120, 150, 200), 1200: (200, 240, 300, 400), 128: (32, 64)}


def benchmark_config(model, n):
    """The authors' Charades-STA model settings at length n (VSLNet-L: the paper's scales for n), resolved for
    1024-d features."""
    from nlvl_tf import configs

    variant = {"model": {"name": model}, "data": {"max_video_len": n, "max_query_len": 20, "max_word_len": 16}}
    if model == "vslnet_l":
        variant["model"]["clip_lengths"] = SCALES.get(n, (n // 4, n // 2))
    config = configs.apply_variant(configs.base_config(), {model: variant}, model)
    return configs.resolve(config, video_feature_dim=1024)


def random_batch(config, batch_size, vocabulary_size, num_chars, seed=0):
    """Videos 90-100% of n long, queries of 6-12 words: the shape of the authors' benchmark inputs."""
    from nlvl_tf.data import labels

    rng = np.random.default_rng(seed)
    n, m, w = config.data.max_video_len, config.data.max_query_len, config.data.max_word_len
    lengths = rng.integers(int(0.9 * n), n + 1, size=batch_size).astype(np.int32)
    word_ids = np.zeros((batch_size, m), np.int32)
    char_ids = np.zeros((batch_size, m, w), np.int32)
    for row in range(batch_size):
        words = rng.integers(6, 13)
        word_ids[row, :words] = rng.integers(2, vocabulary_size, size=words)
        char_ids[row, :words, :6] = rng.integers(2, num_chars, size=(words, 6))
    starts = (lengths * rng.uniform(0, 0.5, size=batch_size)).astype(np.int32)
    ends = np.minimum(starts + (lengths * rng.uniform(0.1, 0.4, size=batch_size)).astype(np.int32), lengths - 1)
    highlight = np.stack(
        [labels.highlight_labels(s, e, length, n).numpy() for s, e, length in zip(starts, ends, lengths)]
    )
    return {
        "video_features": rng.normal(size=(batch_size, n, config.model.video_feature_dim)).astype(np.float32),
        "video_length": lengths,
        "word_ids": word_ids,
        "char_ids": char_ids,
        "start_index": starts,
        "end_index": ends,
        "highlight": highlight.astype(np.float32),
    }


def environment():
    """Settings that change speed, reported with every figure."""
    keys = (
        "GLIBC_TUNABLES",
        "TF_ENABLE_ONEDNN_OPTS",
        "OMP_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "MALLOC_ARENA_MAX",
        "LD_PRELOAD",
        "XLA_FLAGS",
    )
    return {key: os.environ[key] for key in keys if key in os.environ}


def gemm_calibration(size=1024, repeats=20):
    """Machine-speed probe printed beside every timing: min and median ms of a float32 size^3 matrix product with
    TensorFlow's default threads. The authors' side-by-side harness prints the same probe (PyTorch, 2 threads), so a
    ratio is only quoted where both probes agree that the machine ran at one speed."""
    import time

    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.matmul(a, b)[0, 0])
    for _ in range(3):
        product().numpy()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        product().numpy()
        durations.append(1000 * (time.perf_counter() - started))
    best = min(durations)
    return {
        "gemm": size,
        "min_ms": best,
        "median_ms": float(np.median(durations)),
        "gflops_at_min": 2 * size**3 / (best * 1e-3) / 1e9,
    }


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(durations, batch_size):
    durations = np.asarray(durations)
    median = float(np.median(durations))
    return {
        "median_s": median,
        "p10_s": float(np.percentile(durations, 10)),
        "p90_s": float(np.percentile(durations, 90)),
        "samples_per_s": batch_size / median,
    }


def training_step(model_type, n, batch_size, jit_compile, vocabulary_size=1302, num_chars=40):
    """(config, the trainer's step function, a random batch) for the benchmark settings."""
    import tensorflow as tf

    from nlvl_tf.model import vslnet
    from nlvl_tf.train import optimizer as optimizer_lib
    from nlvl_tf.train import step as step_lib

    config = benchmark_config(model_type, n)
    vectors = np.random.default_rng(0).normal(size=(vocabulary_size - 2, 300)).astype(np.float32)
    model = vslnet.build_model(config.model, vocabulary_size, num_chars, vectors)
    optimizer = optimizer_lib.make_optimizer(config.train, total_steps=10_000)
    optimizer.build(model.trainable_variables)
    step = step_lib.make_train_step(model, optimizer, tf.distribute.get_strategy(), config.train.clip_norm, jit_compile)
    batch = {
        key: tf.constant(value) for key, value in random_batch(config, batch_size, vocabulary_size, num_chars).items()
    }
    return config, step, batch


def time_steps(step, batch, warmup, steps):
    """Seconds of each of `steps` calls of `step(batch)` after `warmup` untimed ones (the loss is read back)."""
    import time

    for _ in range(warmup):
        float(step(batch)["loss"])
    durations = []
    for _ in range(steps):
        started = time.perf_counter()
        float(step(batch)["loss"])
        durations.append(time.perf_counter() - started)
    return durations
