"""Latency and throughput of the exported SavedModel's `serving_default`, raw text in.

Exports a model with the authors' Charades-STA settings (random weights and a 1,300-word vocabulary: speed does not
depend on the values), loads the SavedModel back and calls the signature with raw query strings and videos ~95% of n
long. Prints one JSON object on its last line: median and p99 latency, requests and queries per second.

    python benchmarks/serving.py --n=128 --batch_size=1 [--model=vslnet] [--requests=200] [--xla_loop]

The export's LSTM loops are plain while-loops unless --xla_loop (export.py's flag) compiles them.
"""

import json
import tempfile
import time

import common
import numpy as np
from absl import app, flags

_MODEL = flags.DEFINE_enum("model", "vslnet", ["vslbase", "vslnet", "vslnet_l"], "Model family.")
_N = flags.DEFINE_integer("n", 128, "Video length n of the model.")
_BATCH = flags.DEFINE_integer("batch_size", 1, "Queries (videos) per request.")
_REQUESTS = flags.DEFINE_integer("requests", 200, "Timed requests (after warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 10, "Untimed requests first.")
_XLA_LOOP = flags.DEFINE_bool("xla_loop", False, "Export with XLA-compiled LSTM loops (export.py --xla_loop).")
_INTRA_OP = flags.DEFINE_integer(
    "intra_op_threads",
    0,
    "TensorFlow intra-op threads (0 = default, all cores). 1 is fastest at batch 1: the ops "
    "of a single query are too small to split across cores.",
)

WORDS = ["person", "opens", "door", "closes", "the", "a", "takes", "book", "from", "shelf", "sits", "on", "chair"]


def export_benchmark_model(model_type, n, directory, xla_loop=False):
    """Saves a randomly initialised model with the benchmark settings and a synthetic vocabulary; returns the path."""
    import os

    from nlvl_tf.data import text
    from nlvl_tf.model import vslnet
    from nlvl_tf.serve import export

    config = common.benchmark_config(model_type, n)
    rng = np.random.default_rng(0)
    words = tuple(WORDS + [f"word{i}" for i in range(1300 - len(WORDS))])
    chars = tuple(sorted(set("".join(words))))
    vocabulary = text.Vocabulary(words, chars, rng.normal(size=(len(words), 300)).astype(np.float32))
    vocabulary_dir = os.path.join(directory, "vocabulary")
    vocabulary.save(vocabulary_dir)
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    export_dir = os.path.join(directory, "export")
    export.save(model, config, vocabulary, vocabulary_dir, export_dir, top_k=5, xla_loop=xla_loop)
    return export_dir, config


def requests(config, batch_size, count, seed=0):
    """`count` requests of `batch_size` videos (90-100% of n rows) with 6-12-word raw queries."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n, dim = config.data.max_video_len, config.model.video_feature_dim
    made = []
    for _ in range(count):
        lengths = rng.integers(int(0.9 * n), n + 1, size=batch_size).astype(np.int32)
        queries = [" ".join(rng.choice(WORDS, size=rng.integers(6, 13))) + "." for _ in range(batch_size)]
        made.append(
            {
                "video_features": tf.constant(rng.normal(size=(batch_size, n, dim)).astype(np.float32)),
                "video_length": tf.constant(lengths),
                "duration": tf.constant(lengths / 2.0, tf.float32),
                "query": tf.constant(queries),
            }
        )
    return made


def main(argv):
    del argv
    import tensorflow as tf

    if _INTRA_OP.value:
        tf.config.threading.set_intra_op_parallelism_threads(_INTRA_OP.value)
    calibration_start = common.gemm_calibration()
    with tempfile.TemporaryDirectory() as directory:
        export_dir, config = export_benchmark_model(_MODEL.value, _N.value, directory, _XLA_LOOP.value)
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        inputs = requests(config, _BATCH.value, _WARMUP.value + _REQUESTS.value)
        for request in inputs[: _WARMUP.value]:
            serve(**request)["score"].numpy()
        latencies = []
        for request in inputs[_WARMUP.value :]:
            started = time.perf_counter()
            serve(**request)["score"].numpy()
            latencies.append(time.perf_counter() - started)
    latencies = np.asarray(latencies)
    median = float(np.median(latencies))
    print(
        json.dumps(
            {
                "benchmark": "serving",
                "model": _MODEL.value,
                "n": _N.value,
                "batch_size": _BATCH.value,
                "requests": _REQUESTS.value,
                "median_ms": 1000 * median,
                "p99_ms": 1000 * float(np.percentile(latencies, 99)),
                "requests_per_s": 1.0 / median,
                "queries_per_s": _BATCH.value / median,
                "intra_op_threads": _INTRA_OP.value or "default",
                "xla_loop": _XLA_LOOP.value,
                "env": common.environment(),
                "calibration_start": calibration_start,
                "calibration_end": common.gemm_calibration(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
