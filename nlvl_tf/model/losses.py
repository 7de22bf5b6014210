"""Training losses of the VSLNet family (docs/model.md 3, 8.2): per-example pieces in float32, reduced by the caller.

Each function returns per-example sums (and counts where the authors normalise by the number of valid positions in
the whole batch), so a multi-replica step can reduce over the global batch exactly as one replica would.
"""

import tensorflow as tf


def span_cross_entropy(start_logits, end_logits, start_index, end_index):
    """CE(start) + CE(end) per example (the authors' sum; the paper's Eq. 5 halves it).

    Args:
        start_logits, end_logits: [B, N] masked logits; start_index, end_index: int [B].
    Returns:
        float32 [B].
    """
    start_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(start_index, tf.int32), logits=tf.cast(start_logits, tf.float32)
    )
    end_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(end_index, tf.int32), logits=tf.cast(end_logits, tf.float32)
    )
    return start_loss + end_loss


def weighted_binary_cross_entropy(logits, labels, mask, positive_weight=2.0):
    """Sigmoid BCE with positives weighted `positive_weight`, summed over valid positions of each example.

    Used by query-guided highlighting (positions) and nil prediction (clips).

    Args:
        logits: [B, L] (masked logits are fine: masked positions are excluded); labels: [B, L] in {0, 1};
        mask: [B, L] bool.
    Returns:
        (loss sum [B], number of valid positions [B]), both float32.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.float32)
    valid = tf.cast(mask, tf.float32)
    per_position = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=tf.where(mask, logits, 0.0))
    weights = tf.where(labels > 0.5, positive_weight, 1.0)
    return tf.reduce_sum(per_position * weights * valid, axis=-1), tf.reduce_sum(valid, axis=-1)


def combine(components, reduce_across_replicas=None, epsilon=1e-12):
    """Normalises and weights loss components into the objective.

    Args:
        components: {name: (numerator, denominator, weight)} with float32 scalars; a name may carry a "/suffix"
            (e.g. a VSLNet-L scale), terms of the same prefix are added after normalisation.
        reduce_across_replicas: optional function summing a denominator over replicas. Inside `strategy.run` this
            makes each replica's value its share of the GLOBAL-batch loss (numerator / global denominator), so the
            summed replica gradients equal one replica's gradient on the whole batch. None: a single replica.
    Returns:
        {prefix: normalised term} and "loss": the weighted total; all float32 scalars.
    """
    terms = {"loss": tf.constant(0.0)}
    for name, (numerator, denominator, weight) in components.items():
        if reduce_across_replicas is not None:
            denominator = reduce_across_replicas(denominator)
        value = numerator / (denominator + epsilon)
        prefix = name.split("/")[0]
        terms[prefix] = terms.get(prefix, 0.0) + value
        terms["loss"] += weight * value
    return terms
