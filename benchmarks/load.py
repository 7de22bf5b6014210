"""Serving under load: a loaded `Localizer` and the raw `serving_default` signature, each called from many threads at
once with videos of mixed lengths (1 to 4n rows: kept, padded, resampled) and queries of 1-15 words.

Every answer is compared with the sequential answer for the same input: a thread must get exactly its own answer, with
no error. Prints one JSON object on its last line: per caller, the requests, errors and mismatches, requests per
second and p50/p99 latency under load, and requests per second of the same requests one at a time; exits 1 if any
request failed or got another answer.

Without --saved_model it exports the model of benchmarks/serving.py (--model, --n: the authors' Charades-STA
settings, random weights).

    python benchmarks/load.py [--saved_model=E] [--threads=8] [--requests_per_thread=200] [--model=vslnet --n=128]
"""

import json
import os
import sys
import tempfile
import threading
import time

import common
import numpy as np
import serving
from absl import flags

from nlvl_tf import cli

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An export to load (default: export serving.py's model).")
_THREADS = flags.DEFINE_integer("threads", 8, "Threads calling at once.", lower_bound=1)
_PER_THREAD = flags.DEFINE_integer("requests_per_thread", 200, "Requests each thread makes.", lower_bound=1)
_INPUTS = flags.DEFINE_integer(
    "inputs", 64, "Distinct (video, query) inputs the requests cycle through.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the inputs.")


def make_inputs(count, n, feature_dim, seed):
    """`count` (features [T, D], duration, query) with T from 1 to 4n and queries of 1-15 words."""
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(count):
        rows = int(rng.integers(1, 4 * n + 1))
        query = " ".join(rng.choice(serving.WORDS, size=int(rng.integers(1, 16)))) + rng.choice([".", "", "?"])
        inputs.append((rng.normal(size=(rows, feature_dim)).astype(np.float32), rows / 2.0, query))
    return inputs


def callers(export_dir):
    """{name: function(features, duration, query) -> comparable answer} for the Localizer and the raw signature."""
    import tensorflow as tf  # noqa: PLC0415 (after absl parsed the flags)

    from nlvl_tf.serve import export  # noqa: PLC0415
    from nlvl_tf.serve import localizer as localizer_lib  # noqa: PLC0415

    localizer = localizer_lib.Localizer.load(export_dir)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]

    def signature(features, duration, query):
        outputs = serve(
            video_features=tf.constant(features[None]),
            video_length=tf.constant([len(features)]),
            duration=tf.constant([duration], tf.float32),
            query=tf.constant([query]),
        )
        return tuple(outputs[key].numpy().tobytes() for key in export.SERVING_OUTPUTS)

    return {"localizer": localizer.predict, "signature": signature}, localizer.metadata


def under_load(call, inputs, expected, threads, per_thread):
    """Runs `per_thread` requests in each of `threads` threads at once; latencies, errors and wrong answers."""
    latencies, errors, mismatches = [], [], []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(thread):
        mine, bad, wrong = [], [], []
        start.wait()
        for request in range(per_thread):
            index = (thread * 7919 + request * 31) % len(inputs)
            began = time.perf_counter()
            try:
                answer = call(*inputs[index])
            except Exception as error:  # noqa: BLE001 (every failure is counted and reported)
                bad.append(f"{type(error).__name__}: {error}"[:300])
                continue
            mine.append(time.perf_counter() - began)
            if answer != expected[index]:
                wrong.append(index)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)
            mismatches.extend(wrong)

    pool = [threading.Thread(target=worker, args=(thread,)) for thread in range(threads)]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - began, latencies, errors, mismatches


def measure(call, inputs, threads, per_thread):
    expected = [call(*item) for item in inputs]  # also the warm-up: every shape traced once
    began = time.perf_counter()
    again = [call(*item) for item in inputs]
    sequential_s = time.perf_counter() - began
    seconds, latencies, errors, mismatches = under_load(call, inputs, expected, threads, per_thread)
    latencies = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "requests": threads * per_thread,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "mismatches": len(mismatches) + sum(a != b for a, b in zip(again, expected)),
        "requests_per_s": round(threads * per_thread / seconds, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "sequential_requests_per_s": round(len(inputs) / sequential_s, 1),
    }


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as directory:
        export_dir = (
            _SAVED_MODEL.value or serving.export_benchmark_model(flags.FLAGS.model, flags.FLAGS.n, directory)[0]
        )
        calls, metadata = callers(export_dir)
        inputs = make_inputs(_INPUTS.value, metadata["max_video_len"], metadata["feature_dim"], _SEED.value)
        results = {name: measure(call, inputs, _THREADS.value, _PER_THREAD.value) for name, call in calls.items()}
    print(
        json.dumps(
            {
                "benchmark": "load",
                "model": metadata["model"],
                "n": metadata["max_video_len"],
                "feature_dim": metadata["feature_dim"],
                "threads": _THREADS.value,
                "requests_per_thread": _PER_THREAD.value,
                "inputs": _INPUTS.value,
                "cpu_count": os.cpu_count(),
                **results,
                "env": common.environment(),
            }
        )
    )
    if any(result["errors"] or result["mismatches"] for result in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
