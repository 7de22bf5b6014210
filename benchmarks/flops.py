"""FLOPs of one training step and the fraction of this machine's measured matrix-multiply peak that a step reaches.

FLOPs are counted by TensorFlow's graph profiler on the traced step (forward, backward and optimizer update; ops
without a registered FLOP count, such as the LSTM recurrence compiled by XLA, are estimated analytically and added).
The peak is the best of several float32 matmuls of size 2048 on this machine, with TensorFlow's default threads.
Prints one JSON object on its last line.

    python benchmarks/flops.py --model=vslnet --n=128 [--batch_size=16] [--steps=5]
"""

import json
import time

import common
import numpy as np
from absl import app, flags

_MODEL = flags.DEFINE_enum("model", "vslnet", ["vslbase", "vslnet", "vslnet_l"], "Model family.")
_N = flags.DEFINE_integer("n", 128, "Video length n.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps.")


def matmul_peak_gflops(size=2048, repeats=10):
    """Best observed float32 GEMM throughput (GFLOP/s)."""
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        matmul().numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def graph_flops(concrete_function):
    """FLOPs TensorFlow's profiler counts in a traced function's graph (ops with a registered FLOP statistic)."""
    import tensorflow as tf

    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    report = tf.compat.v1.profiler.profile(graph=concrete_function.graph, options=options)
    return report.total_float_ops


def lstm_recurrence_flops(config, batch_size, num_passes):
    """The XLA-compiled recurrence the profiler cannot see: per step h U (2 B u 4u), ~10 elementwise ops on 4u, and
    about twice that backward (recurrent matmul, gate gradients, the dU accumulation)."""
    units = config.model.hidden_size
    per_step_forward = 2 * batch_size * units * 4 * units + 10 * batch_size * 4 * units
    return (
        num_passes * 2 * config.data.max_video_len * 3 * per_step_forward
    )  # start and end LSTMs; forward + 2x backward


def main(argv):
    del argv

    config, step, batch = common.training_step(_MODEL.value, _N.value, _BATCH.value, jit_compile=False)
    counted = graph_flops(step.get_concrete_function(batch))
    passes = len(config.model.clip_lengths) if config.model.name == "vslnet_l" else 1
    total = counted + lstm_recurrence_flops(config, _BATCH.value, passes)
    durations = common.time_steps(step, batch, warmup=1, steps=_STEPS.value)
    median = float(np.median(durations))
    peak = matmul_peak_gflops()
    achieved = total / median / 1e9
    print(
        json.dumps(
            {
                "benchmark": "flops",
                "model": _MODEL.value,
                "n": _N.value,
                "batch_size": _BATCH.value,
                "gflops_per_step": total / 1e9,
                "profiler_counted_gflops": counted / 1e9,
                "median_step_s": median,
                "achieved_gflops_per_s": achieved,
                "matmul_peak_gflops_per_s": peak,
                "fraction_of_peak": achieved / peak,
                "env": common.environment(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
