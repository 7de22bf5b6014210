"""Cross-modal attention (paper Sec. 3.3, Eq. 2-3), its CAT alternative (Table 8), and attention pooling."""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import arguments, dropout, masking


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ContextQueryAttention(keras.layers.Layer):
    """Context-query attention (paper Eq. 2-3): fuses query information into every video position.

    Trilinear similarity S_ij = w_v.v_i + w_q.q_j + w_m.(v_i * q_j) on dropped-out inputs, row softmax S_r over valid
    query words, column softmax S_c over valid video positions, A = S_r Q, B = S_r S_c^T V, and a bias-free projection
    of [V; A; V*A; V*B] to d (the authors' TF code; `use_bias=True` gives their PyTorch port). B is computed as
    S_r (S_c^T V), which never forms the N x N matrix.

    Args:
        dropout: rate applied to the similarity inputs only.
        use_bias: bias in the output projection.

    Call arguments:
        video: [B, N, d]; query: [B, M, d]; video_mask: [B, N] bool; query_mask: [B, M] bool.
        return_similarity: also return S, [B, N, M] float32 unmasked scores (for figures).

    Returns:
        [B, N, d] query-aware video features (and S with `return_similarity`).

    Example:
    >>> layer = ContextQueryAttention(dropout=0.1)
    >>> fused = layer(video, query, video_mask, query_mask)
    """

    def __init__(self, dropout=0.0, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.dropout = arguments.rate("dropout", dropout)
        self.use_bias = bool(use_bias)

    def build(self, video_shape, query_shape, video_mask_shape=None, query_mask_shape=None):
        hidden_size = video_shape[-1]
        self.video_weight = self.add_weight(name="video_weight", shape=(hidden_size, 1), initializer="glorot_uniform")
        self.query_weight = self.add_weight(name="query_weight", shape=(hidden_size, 1), initializer="glorot_uniform")
        self.product_weight = self.add_weight(
            name="product_weight", shape=(1, 1, hidden_size), initializer="glorot_uniform"
        )
        self.input_dropout = dropout.Dropout(self.dropout, dtype=self.dtype_policy)
        self.output_projection = keras.layers.Dense(
            hidden_size, use_bias=self.use_bias, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build((*video_shape[:-1], 4 * hidden_size))

    def call(self, video, query, video_mask, query_mask, training=None, return_similarity=False):
        video_dropped = self.input_dropout(video, training=training)
        query_dropped = self.input_dropout(query, training=training)
        similarity = (
            tf.matmul(video_dropped, self.video_weight)
            + tf.transpose(tf.matmul(query_dropped, self.query_weight), [0, 2, 1])
            + tf.matmul(video_dropped * self.product_weight, query_dropped, transpose_b=True)
        )
        row_attention = tf.cast(masking.masked_softmax(similarity, query_mask[:, tf.newaxis, :], axis=2), video.dtype)
        column_attention = tf.cast(
            masking.masked_softmax(similarity, video_mask[:, :, tf.newaxis], axis=1), video.dtype
        )
        video_to_query = tf.matmul(row_attention, query)
        query_to_video = tf.matmul(row_attention, tf.matmul(column_attention, video, transpose_a=True))
        fused = self.output_projection(
            tf.concat([video, video_to_query, video * video_to_query, video * query_to_video], axis=-1)
        )
        return (fused, tf.cast(similarity, tf.float32)) if return_similarity else fused

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ConcatAttention(keras.layers.Layer):
    """CAT, the simple alternative to CQA in the paper's Table 8: [v_i; max-pooled query] projected to d.

    Call arguments:
        video: [B, N, d]; query: [B, M, d]; video_mask: [B, N] bool (unused: positions are independent);
        query_mask: [B, M] bool.

    Returns:
        [B, N, d].

    Example:
    >>> fused = ConcatAttention()(video, query, video_mask, query_mask)
    """

    def build(self, video_shape, query_shape, video_mask_shape=None, query_mask_shape=None):
        hidden_size = video_shape[-1]
        self.output_projection = keras.layers.Dense(hidden_size, dtype=self.dtype_policy, name="output_projection")
        self.output_projection.build((*video_shape[:-1], 2 * hidden_size))

    def call(self, video, query, video_mask, query_mask, training=None):
        lowest = tf.constant(query.dtype.min, query.dtype)
        pooled = tf.reduce_max(tf.where(query_mask[:, :, tf.newaxis], query, lowest), axis=1)
        pooled = tf.broadcast_to(pooled[:, tf.newaxis, :], tf.shape(video))
        return self.output_projection(tf.concat([video, pooled], axis=-1))


@keras.saving.register_keras_serializable(package="nlvl_tf")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling of a sequence into one vector: a = softmax(masked(x w)), h = sum_j a_j x_j.

    Gives the sentence vector h_Q of query-guided highlighting (paper Sec. 3.5) and the clip vector of the nil
    prediction module (Eq. 12). No bias: a constant added to every score leaves the softmax unchanged.

    Call arguments:
        inputs: [B, L, d]; mask: [B, L] bool.

    Returns:
        [B, d].

    Example:
    >>> sentence = AttentionPooling()(query, query_mask)
    """

    def build(self, inputs_shape, mask_shape=None):
        self.score_weight = self.add_weight(
            name="score_weight", shape=(inputs_shape[-1], 1), initializer="glorot_uniform"
        )

    def call(self, inputs, mask):
        scores = tf.squeeze(tf.matmul(inputs, self.score_weight), axis=-1)
        weights = tf.cast(masking.masked_softmax(scores, mask), inputs.dtype)
        return tf.einsum("bl,bld->bd", weights, inputs)
