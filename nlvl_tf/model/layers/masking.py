"""Boolean masks to logits: the one place that decides how padded positions are excluded.

Masks are booleans end to end. Logits are promoted to float32 before a large negative value is written into padded
positions, because -1e30 is not representable in float16 (mixed precision keeps logits, softmax and losses in float32).
"""

import tensorflow as tf

from nlvl_tf import configs

MASK_VALUE = -1e30


def mask_logits(logits, mask):
    """Returns float32 `logits` with `MASK_VALUE` wherever the boolean `mask` (broadcastable) is False."""
    logits = tf.cast(logits, tf.float32)
    return tf.where(mask, logits, tf.constant(MASK_VALUE, tf.float32))


def masked_softmax(logits, mask, axis=-1):
    """Softmax over `axis` in float32 that gives zero probability to masked positions.

    The mask enters as an additive bias (0 or MASK_VALUE, shaped like the mask): the sum equals `mask_logits` exactly
    (|logits| is far below the spacing of float32 around 1e30), and its gradient passes through unchanged, where a
    select would cost a second full-size select in the backward pass (the [B, h, L, L] attention scores).
    """
    bias = tf.where(mask, tf.constant(0.0, tf.float32), tf.constant(MASK_VALUE, tf.float32))
    return tf.nn.softmax(tf.cast(logits, tf.float32) + bias, axis=axis)


def zero_padding(features, mask):
    """Zeroes padded positions of `features` [B, L, d] given `mask` [B, L], keeping the features' dtype."""
    return features * tf.cast(mask, features.dtype)[..., tf.newaxis]


# How layers treat padded positions (config.model.padding_semantics, docs/model.md 9 and 10.1). "invariant":
# convolutions see zeros there and the character CNN pools only over windows inside the word, so outputs at valid
# positions never depend on padding. "authors": the authors' computation, where a batch is padded to its longest
# member and padded slots are convolved like any other.
PADDING_SEMANTICS = configs.PADDING_SEMANTICS


def batch_extent(mask):
    """The positions before the end of the batch's longest sequence, as a mask shaped like `mask` [B, L] (prefix
    masks): the slots a batch padded to its longest member holds, the authors' padding."""
    return tf.broadcast_to(tf.reduce_any(mask, axis=0, keepdims=True), tf.shape(mask))
