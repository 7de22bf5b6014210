"""One training step under any tf.distribute strategy: the loss over the global batch, the global gradient, clipped
once, and the update. The one place that scales the loss for float16."""

import keras
import tensorflow as tf

from nlvl_tf.model import losses


def _loss_scale(optimizer):
    """The dynamic loss scale of a `LossScaleOptimizer` (mixed_float16), else None."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return tf.cast(optimizer.dynamic_scale, tf.float32)
    return None


def replica_gradients(model, batch, clip_norm, loss_scale=None):
    """One replica's share of the global-batch loss terms and of the global, clipped gradient.

    Runs in a replica context (inside `strategy.run`, or directly for one device). Loss denominators are summed over
    replicas, the gradients are summed and clipped by their global norm, then each replica gets 1 / replicas of the
    result so the optimizer's own cross-replica sum restores it.

    With a `loss_scale` (float16), the loss is multiplied by it before differentiation, so small gradients survive in
    float16; the gradients stay scaled, and clipping uses `clip_norm * loss_scale`, the same bound on the scaled
    values. The `LossScaleOptimizer` that applies them divides by the scale once (and skips the step and lowers the
    scale when a gradient is not finite).

    Returns:
        (terms: dict of float32 scalars, this replica's share, unscaled; gradients aligned with trainable_variables).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync

    def sum_over_replicas(value):
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value) if replicas > 1 else value

    with tf.GradientTape() as tape:
        outputs = model(batch, training=True)
        terms = losses.combine(model.loss_components(batch, outputs), sum_over_replicas)
        loss = terms["loss"] if loss_scale is None else terms["loss"] * loss_scale
    gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.trainable_variables)]
    gradients = sum_over_replicas(gradients)
    if clip_norm:
        bound = clip_norm if loss_scale is None else clip_norm * loss_scale
        gradients, _ = tf.clip_by_global_norm(gradients, bound)
    if replicas > 1:
        gradients = [g / replicas for g in gradients]
    return terms, gradients


def make_train_step(model, optimizer, strategy, clip_norm, jit_compile):
    """The traced step: distributed batch -> loss terms summed over replicas; applies one optimizer update."""

    def replica_step(batch):
        terms, gradients = replica_gradients(model, batch, clip_norm, _loss_scale(optimizer))
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return terms

    @tf.function(jit_compile=jit_compile)
    def train_step(batch):
        terms = strategy.run(replica_step, args=(batch,))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for key, value in terms.items()}

    return train_step
