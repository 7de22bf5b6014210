"""Times the trainer's own training step (`nlvl_tf.training.make_train_step`) on random inputs.

Settings are the authors' Charades-STA defaults (d = 128, 8 heads, char CNN, video dim 1024, batch 16) with videos
~95% full, as in the figures of the authors' code this project is compared with. Prints one JSON object on its last
line: median and p10/p90 seconds per step after warm-up, samples/s, peak RSS, and the environment in force.

    python benchmarks/train_step.py --model=vslnet --n=128 --batch_size=16 [--xla] [--steps=20]
"""

import json

import common
from absl import app, flags

_MODEL = flags.DEFINE_enum("model", "vslnet", ["vslbase", "vslnet", "vslnet_l"], "Model family.")
_N = flags.DEFINE_integer("n", 128, "Video length n (max_video_len).")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Global batch size.")
_XLA = flags.DEFINE_bool("xla", False, "jit_compile the step.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps (after warm-up).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps first (tracing, compilation, allocator warm-up).")
_THREADS = flags.DEFINE_integer("threads", 0, "intra/inter-op threads (0 = TensorFlow's default).")


def main(argv):
    del argv
    import tensorflow as tf

    if _THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
        tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    calibration_start = common.gemm_calibration()
    _, step, batch = common.training_step(_MODEL.value, _N.value, _BATCH.value, _XLA.value)
    durations = common.time_steps(step, batch, _WARMUP.value, _STEPS.value)
    result = {
        "benchmark": "train_step",
        "model": _MODEL.value,
        "n": _N.value,
        "batch_size": _BATCH.value,
        "xla": _XLA.value,
        "steps": _STEPS.value,
        **common.summarize(durations, _BATCH.value),
        "peak_rss_mib": common.peak_rss_mib(),
        "threads": _THREADS.value or "default",
        "env": common.environment(),
        "calibration_start": calibration_start,
        "calibration_end": common.gemm_calibration(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
