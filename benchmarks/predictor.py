"""Times the conditioned span predictor (two LSTMs over the whole video and the two scoring heads), forward and
backward, on its own: the share of a training step that no encoder change touches. Prints one JSON object.

    python benchmarks/predictor.py --batch_size=16 --n=600 [--repeats=8]

VSLNet runs it on [16, n, 128]; VSLNet-L stacks its four scales on the batch axis: [64, n, 128].
"""

import json
import time

import common
import numpy as np
from absl import app, flags

_BATCH = flags.DEFINE_integer("batch_size", 16, "Rows (VSLNet-L: 4 x the batch).")
_N = flags.DEFINE_integer("n", 600, "Video length n.")
_REPEATS = flags.DEFINE_integer("repeats", 8, "Timed calls.")


def main(argv):
    del argv
    import tensorflow as tf

    from nlvl_tf.model.layers import predictor

    features = tf.random.normal([_BATCH.value, _N.value, 128])
    mask = tf.ones([_BATCH.value, _N.value], bool)
    layer = predictor.ConditionedSpanPredictor(128)
    layer(features, mask)

    @tf.function
    def forward_and_backward(features):
        with tf.GradientTape() as tape:
            tape.watch(features)
            start_logits, end_logits = layer(features, mask)
            loss = tf.reduce_sum(start_logits) + tf.reduce_sum(end_logits)
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, [features, *layer.trainable_variables])])

    calibration_start = common.gemm_calibration()
    for _ in range(3):
        forward_and_backward(features).numpy()
    durations = []
    for _ in range(_REPEATS.value):
        started = time.perf_counter()
        forward_and_backward(features).numpy()
        durations.append(1000 * (time.perf_counter() - started))
    print(
        json.dumps(
            {
                "benchmark": "predictor",
                "shape": [_BATCH.value, _N.value, 128],
                "forward_backward_ms": {"min": min(durations), "median": float(np.median(durations))},
                "calibration_start": calibration_start,
                "calibration_end": common.gemm_calibration(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
