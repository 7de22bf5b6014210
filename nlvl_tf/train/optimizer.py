"""The authors' optimizer: AdamW without weight decay on LayerNorm parameters and biases, on a warmup + linear decay
schedule (paper Sec. 4.2)."""

import keras
import tensorflow as tf

NO_WEIGHT_DECAY = ("gamma", "beta", "bias")  # LayerNorm scale/offset and biases, as the authors' AdamW


@keras.saving.register_keras_serializable(package="nlvl_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear decay from `peak` to 0 over `total_steps`, overridden by a linear warmup `peak * step / warmup_steps`
    during the first `warmup_steps`."""

    def __init__(self, peak, total_steps, warmup_steps=0):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self.peak * tf.maximum(0.0, 1.0 - step / max(self.total_steps, 1))
        if not self.warmup_steps:
            return decayed
        return tf.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def make_optimizer(train_config, total_steps):
    """AdamW on `WarmupLinearDecay` from config.train; wrapped in a dynamic `LossScaleOptimizer` for mixed_float16.

    Global-norm clipping is not given to Keras: under a multi-replica strategy Keras would clip each replica's partial
    gradient; `step.replica_gradients` clips the summed gradient instead.
    """
    schedule = WarmupLinearDecay(
        train_config.learning_rate, total_steps, int(train_config.warmup_proportion * total_steps)
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=train_config.weight_decay, epsilon=train_config.adam_epsilon
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    if train_config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
