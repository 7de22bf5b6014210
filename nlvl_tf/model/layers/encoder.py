"""Feature encoders (paper Sec. 3.2, Fig. 3) and the BiLSTM alternative of the paper's Table 8.

`FeatureEncoder` is the authors' single QANet-style block: learned positional embedding, 4 x `ConvBlock`
(pre-LayerNorm depthwise-separable convolution, ReLU, residual), pre-LN multi-head self-attention without output
projection, and a pre-LN linear feed-forward layer. ONE instance is shared by the video and the query (positional
table included).

By default (`padding_semantics="invariant"`) padding never changes valid outputs: the convolution inputs are zeroed
at padded positions, and attention keys are masked. The authors pad a batch to its longest member and convolve over
whatever its padded slots hold (the video projection's bias plus the positional embedding), so their last valid
outputs depend on the batch: measured against their PyTorch model with the same weights, up to 3.3 in the start
logits and 1.7 in the end logits on a padded batch. `padding_semantics="authors"` computes exactly that
(docs/model.md 9 and 10.1).
"""

import math

import keras
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.model.layers import arguments, dot_product_attention, dropout, linear, lstm, masking


@keras.saving.register_keras_serializable(package="nlvl_tf")
class DepthwiseConv1D(keras.layers.DepthwiseConv1D):
    """`keras.layers.DepthwiseConv1D` with 'same' padding, stride 1 and no bias, run as a 2-D convolution over
    [B, L, 1, C] instead of Keras' [B, 1, L, C]: oneDNN's filter gradient is 4x faster in that layout (1.2 ms vs
    4.6 ms at [16, 600, 128]). Same weights and config as the Keras layer.

    Args:
        kernel_size: window length (odd, so that 'same' is centred).

    Example:
    >>> DepthwiseConv1D(7)(features)  # [B, L, C] -> [B, L, C]
    """

    def __init__(self, kernel_size, **kwargs):
        kwargs.setdefault("padding", "same")
        kwargs.setdefault("use_bias", False)
        super().__init__(kernel_size, **kwargs)
        if (self.padding, self.strides, self.dilation_rate, self.depth_multiplier, self.use_bias, self.data_format) != (
            "same",
            (1,),
            (1,),
            1,
            False,
            "channels_last",
        ):
            raise errors.InputError(
                f"{self.name}: only padding='same', strides=1, dilation_rate=1, depth_multiplier=1, "
                f"use_bias=False and channels_last are supported"
            )

    def call(self, inputs):
        kernel = tf.cast(self.kernel, inputs.dtype)[:, tf.newaxis]  # [k, C, 1] -> [k, 1, C, 1]
        return tf.nn.depthwise_conv2d(inputs[:, :, tf.newaxis], kernel, [1, 1, 1, 1], "SAME")[:, :, 0]


@keras.saving.register_keras_serializable(package="nlvl_tf")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention as in the authors' code: Q/K/V projections with bias, masked keys, no output
    projection.

    Args:
        num_heads: number of heads; the hidden size must be divisible by it.
        dropout: rate on the attention probabilities.

    Call arguments:
        inputs: [B, L, d]; mask: [B, L] bool (False keys are ignored).

    Returns:
        [B, L, d], the heads concatenated.

    Example:
    >>> MultiHeadSelfAttention(num_heads=8)(features, mask)
    """

    def __init__(self, num_heads=8, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = arguments.positive_int("num_heads", num_heads)
        self.dropout = arguments.rate("dropout", dropout)

    def build(self, inputs_shape, mask_shape=None):
        hidden_size = inputs_shape[-1]
        if hidden_size % self.num_heads:
            raise errors.InputError(f"hidden size {hidden_size} is not a multiple of num_heads={self.num_heads}")
        self.query_projection, self.key_projection, self.value_projection = (
            keras.layers.Dense(hidden_size, dtype=self.dtype_policy, name=name) for name in ("query", "key", "value")
        )
        for projection in (self.query_projection, self.key_projection, self.value_projection):
            projection.build(inputs_shape)
        self.probability_dropout = dropout.Dropout(self.dropout, dtype=self.dtype_policy)

    def call(self, inputs, mask, training=None):
        hidden_size = inputs.shape[-1]
        head_size = hidden_size // self.num_heads

        def split_heads(x):
            x = tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], self.num_heads, head_size])
            return tf.transpose(x, [0, 2, 1, 3])

        query = split_heads(self._scaled_query(inputs, 1.0 / math.sqrt(head_size)))
        key = split_heads(self.key_projection(inputs))
        value = split_heads(self.value_projection(inputs))
        keep, keep_scale = None, 1.0
        if training and self.probability_dropout.rate > 0:
            keep = self.probability_dropout.keep_mask(tf.concat([tf.shape(query)[:3], tf.shape(key)[2:3]], axis=0))
            keep_scale = self.probability_dropout.keep_scale
        heads = tf.transpose(dot_product_attention.attend(query, key, value, mask, keep, keep_scale), [0, 2, 1, 3])
        return tf.reshape(heads, [tf.shape(inputs)[0], tf.shape(inputs)[1], hidden_size])

    def _scaled_query(self, inputs, scale):
        """The query projection times 1 / sqrt(head size), with the scale folded into the [d, d] weights instead of a
        multiply over every query row and its gradient (2.5% of a VSLNet-L step at n = 600)."""
        projection = self.query_projection
        return linear.project(inputs, projection.kernel * scale, projection.bias * scale)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ConvBlock(keras.layers.Layer):
    """One residual depthwise-separable convolution of the feature encoder: x + dropout(pointwise(depthwise(LN(x)))),
    with ReLU after the pointwise projection.

    The LayerNorm output is zeroed where `mask` is False before the convolution. With the sequences' own mask,
    padding never reaches a valid position; `FeatureEncoder` in the authors' padding passes the batch's extent
    instead, so padded slots take part as in their code.

    Args:
        kernel_size: depthwise convolution width (odd).
        dropout: rate on the block's output before the residual sum.

    Call arguments:
        inputs: [B, L, d]; mask: [B, L] bool.

    Returns:
        [B, L, d].

    Example:
    >>> ConvBlock(kernel_size=7, dropout=0.2)(features, mask)
    """

    def __init__(self, kernel_size=7, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = arguments.positive_int("kernel_size", kernel_size)
        self.dropout = arguments.rate("dropout", dropout)

    def build(self, inputs_shape, mask_shape=None):
        hidden_size = inputs_shape[-1]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=self.dtype_policy, name="norm")
        self.depthwise = DepthwiseConv1D(self.kernel_size, dtype=self.dtype_policy, name="depthwise")
        self.pointwise = keras.layers.Dense(hidden_size, activation="relu", dtype=self.dtype_policy, name="pointwise")
        for layer in (self.norm, self.depthwise, self.pointwise):
            layer.build(inputs_shape)
        self.output_dropout = dropout.Dropout(self.dropout, dtype=self.dtype_policy)

    def call(self, inputs, mask, training=None):
        convolved = self.pointwise(self.depthwise(masking.zero_padding(self.norm(inputs), mask)))
        return inputs + self.output_dropout(convolved, training=training)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="nlvl_tf")
class FeatureEncoder(keras.layers.Layer):
    """The authors' feature encoder block (paper Sec. 3.2, Fig. 3), ONE instance shared by video and query.

    Learned positional embedding, `num_conv_layers` x `ConvBlock`, pre-LayerNorm multi-head self-attention without
    output projection, and a pre-LayerNorm linear feed-forward layer, each with dropout and a residual sum.

    With `padding_semantics="authors"` the convolutions see every slot up to the end of the batch's longest sequence,
    padded ones included, and zeros only after it: the authors' computation on a batch padded to its longest member,
    whatever the input's own padding. A short sequence's outputs then depend on its batch: through the convolutions at
    its last (kernel_size // 2) x num_conv_layers positions (12 at the defaults), and through self-attention at all.

    Args:
        num_heads: attention heads (8).
        kernel_size: depthwise convolution width (7).
        num_conv_layers: convolution blocks (4).
        max_position: size of the learned positional table; longer inputs are an error.
        dropout: rate used after every sub-layer and on the attention probabilities.
        padding_semantics: "invariant" (valid outputs never depend on padding) or "authors" (see above).

    Call arguments:
        inputs: [B, L, d]; mask: [B, L] bool, a prefix of True values per row.

    Returns:
        [B, L, d]. Values at padded positions are meaningless; with "invariant", valid positions do not depend on
        them.

    Example:
    >>> encoder = FeatureEncoder(num_heads=8, kernel_size=7, num_conv_layers=4, max_position=128, dropout=0.2)
    >>> encoded = encoder(features, mask)
    >>> as_the_authors = FeatureEncoder(max_position=128, padding_semantics="authors")(features, mask)
    """

    def __init__(
        self,
        num_heads=8,
        kernel_size=7,
        num_conv_layers=4,
        max_position=128,
        dropout=0.0,
        padding_semantics="invariant",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = arguments.positive_int("num_heads", num_heads)
        self.kernel_size = arguments.positive_int("kernel_size", kernel_size)
        self.num_conv_layers = arguments.positive_int("num_conv_layers", num_conv_layers)
        self.max_position = arguments.positive_int("max_position", max_position)
        self.dropout = arguments.rate("dropout", dropout)
        self.padding_semantics = arguments.choice("padding_semantics", padding_semantics, masking.PADDING_SEMANTICS)

    def build(self, inputs_shape, mask_shape=None):
        hidden_size = inputs_shape[-1]
        self.positional_embedding = self.add_weight(
            name="positional_embedding", shape=(self.max_position, hidden_size), initializer="glorot_uniform"
        )
        policy = self.dtype_policy
        # A tuple, which tf.train.Checkpoint tracks (a list of layers it would not see).
        self.conv_blocks = tuple(
            ConvBlock(self.kernel_size, self.dropout, dtype=policy, name=f"conv_block_{index}")
            for index in range(self.num_conv_layers)
        )
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy, name="attention_layer_norm")
        self.attention = MultiHeadSelfAttention(self.num_heads, self.dropout, dtype=policy, name="self_attention")
        self.feed_forward_norm = keras.layers.LayerNormalization(
            epsilon=1e-6, dtype=policy, name="feed_forward_layer_norm"
        )
        self.feed_forward = keras.layers.Dense(hidden_size, dtype=policy, name="feed_forward")
        for layer in (
            *self.conv_blocks,
            self.attention_norm,
            self.attention,
            self.feed_forward_norm,
            self.feed_forward,
        ):
            layer.build(inputs_shape)
        self.dropout_layer = dropout.Dropout(self.dropout, dtype=policy)

    def call(self, inputs, mask, training=None):
        length = inputs.shape[1]
        if length is not None and length > self.max_position:
            raise errors.InputError(f"{self.name}: sequence length {length} exceeds max_position={self.max_position}")
        x = inputs + self.positional_embedding[: tf.shape(inputs)[1]]
        conv_mask = masking.batch_extent(mask) if self.padding_semantics == "authors" else mask
        for block in self.conv_blocks:
            x = block(x, conv_mask, training=training)
        y = self.dropout_layer(self.attention_norm(x), training=training)
        y = self.attention(y, mask, training=training)
        x = x + self.dropout_layer(y, training=training)
        y = self.dropout_layer(self.feed_forward_norm(x), training=training)
        return x + self.dropout_layer(self.feed_forward(y), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "kernel_size": self.kernel_size,
            "num_conv_layers": self.num_conv_layers,
            "max_position": self.max_position,
            "dropout": self.dropout,
            "padding_semantics": self.padding_semantics,
        }


@keras.saving.register_keras_serializable(package="nlvl_tf")
class BiLSTMEncoder(keras.layers.Layer):
    """The BiLSTM feature encoder of the paper's module ablation (Table 8), a drop-in for `FeatureEncoder`.

    Forward and backward LSTMs of d/2 units each, concatenated to d. The backward pass runs over each sequence's valid
    part only (reversed within its length), so padding never reaches valid outputs.

    Call arguments:
        inputs: [B, L, d]; mask: [B, L] bool, a prefix of True values per row.

    Returns:
        [B, L, d].

    Example:
    >>> BiLSTMEncoder()(features, mask)
    """

    def build(self, inputs_shape, mask_shape=None):
        hidden_size = inputs_shape[-1]
        if hidden_size % 2:
            raise errors.InputError(f"{self.name}: hidden size must be even, got {hidden_size}")
        self.forward_lstm = lstm.UnidirectionalLSTM(hidden_size // 2, dtype=self.dtype_policy, name="forward_lstm")
        self.backward_lstm = lstm.UnidirectionalLSTM(hidden_size // 2, dtype=self.dtype_policy, name="backward_lstm")
        self.forward_lstm.build(inputs_shape)
        self.backward_lstm.build(inputs_shape)

    def call(self, inputs, mask, training=None):
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        forward = self.forward_lstm(inputs)
        reversed_inputs = tf.reverse_sequence(inputs, lengths, seq_axis=1, batch_axis=0)
        backward = tf.reverse_sequence(self.backward_lstm(reversed_inputs), lengths, seq_axis=1, batch_axis=0)
        return tf.concat([forward, backward], axis=-1)

    def compute_output_shape(self, inputs_shape, mask_shape=None):
        return tuple(inputs_shape)
