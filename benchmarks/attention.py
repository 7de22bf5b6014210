"""Times self-attention's core (scores, masked softmax, dropout, heads), forward and backward, with the XLA-fused
backward pass of `nlvl_tf.model.layers.dot_product_attention` against TensorFlow's own gradient of the same forward
ops (what an export traced in `compilation.plain_graph()` differentiates). Prints one JSON object on its last line.

    python benchmarks/attention.py --batch_size=16 --length=600 [--heads=8] [--head_size=16] [--repeats=10]

VSLNet's video self-attention at n = 600 is [16, 8, 600, 600]; VSLNet-L's clips of 100 at n = 600 are [96, 8, 100, 100].
"""

import json
import time

import common
import numpy as np
from absl import app, flags

_BATCH = flags.DEFINE_integer("batch_size", 16, "Sequences (clips for VSLNet-L) per batch.")
_LENGTH = flags.DEFINE_integer("length", 600, "Sequence length L.")
_HEADS = flags.DEFINE_integer("heads", 8, "Attention heads.")
_HEAD_SIZE = flags.DEFINE_integer("head_size", 16, "Width of a head.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls of each variant, interleaved.")


def main(argv):
    del argv
    import tensorflow as tf

    from nlvl_tf.model.layers import compilation, dot_product_attention, dropout

    shape = [_BATCH.value, _HEADS.value, _LENGTH.value, _HEAD_SIZE.value]
    query, key, value = (tf.random.normal(shape) for _ in range(3))
    key_mask = tf.sequence_mask(tf.fill([_BATCH.value], int(0.95 * _LENGTH.value)), _LENGTH.value)
    probability_dropout = dropout.Dropout(0.2)

    def make_step():
        @tf.function
        def step(query, key, value):
            with tf.GradientTape() as tape:
                tape.watch([query, key, value])
                keep = probability_dropout.keep_mask(tf.concat([tf.shape(query)[:3], tf.shape(key)[2:3]], 0))
                heads = dot_product_attention.attend(query, key, value, key_mask, keep, probability_dropout.keep_scale)
                loss = tf.reduce_sum(heads * heads)
            return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, [query, key, value])])

        step(query, key, value)  # traced here, inside or outside the plain-graph block
        return step

    steps = {"fused_backward": make_step()}
    with compilation.plain_graph():
        steps["tensorflow_gradient"] = make_step()
    calibration_start = common.gemm_calibration()
    durations = {name: [] for name in steps}
    for _ in range(2):
        for step in steps.values():
            step(query, key, value).numpy()
    for _ in range(_REPEATS.value):
        for name, step in steps.items():
            started = time.perf_counter()
            step(query, key, value).numpy()
            durations[name].append(1000 * (time.perf_counter() - started))
    print(
        json.dumps(
            {
                "benchmark": "attention",
                "shape": shape,
                **{f"{name}_ms": {"min": min(d), "median": float(np.median(d))} for name, d in durations.items()},
                "calibration_start": calibration_start,
                "calibration_end": common.gemm_calibration(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
