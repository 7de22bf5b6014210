"""Cross-modal attention (paper Sec. 3.3, Eq. 2-3), its CAT alternative (Table 8), and attention pooling."""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import dropout, masking


def _check_dropout(dropout):
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ContextQueryAttention(keras.layers.Layer):
    """Context-query attention: fuses query information into every video position.

    Trilinear similarity S_ij = w_v.v_i + w_q.q_j + w_m.(v_i * q_j) on dropped-out inputs, row softmax S_r over valid
    query words, column softmax S_c over valid video positions, A = S_r Q, B = S_r S_c^T V, and a bias-free projection
    of [V; A; V*A; V*B] to d (the authors' TF code; `use_bias=True` gives their PyTorch port). B is computed as
    S_r (S_c^T V), which never forms the N x N matrix.

    Args:
        dropout: rate applied to the similarity inputs only.
        use_bias: bias in the output projection.
    Call args:
        video: [B, N, d]; query: [B, M, d]; video_mask: [B, N] bool; query_mask: [B, M] bool.
    Returns:
        (fused [B, N, d], similarity [B, N, M] float32 unmasked scores, for figures).
    """

    def __init__(self, dropout=0.0, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        _check_dropout(dropout)
        self.dropout = dropout
        self.use_bias = bool(use_bias)

    def build(self, video_shape, query_shape=None, *args):
        hidden_size = video_shape[-1]
        self.video_weight = self.add_weight(name="video_weight", shape=(hidden_size, 1), initializer="glorot_uniform")
        self.query_weight = self.add_weight(name="query_weight", shape=(hidden_size, 1), initializer="glorot_uniform")
        self.product_weight = self.add_weight(
            name="product_weight", shape=(1, 1, hidden_size), initializer="glorot_uniform"
        )
        self.input_dropout = dropout.Dropout(self.dropout)
        self.output_projection = keras.layers.Dense(hidden_size, use_bias=self.use_bias, name="output_projection")
        self.output_projection.build((*video_shape[:-1], 4 * hidden_size))

    def call(self, video, query, video_mask, query_mask, training=False):
        dtype = video.dtype
        video_dropped = self.input_dropout(video, training=training)
        query_dropped = self.input_dropout(query, training=training)
        similarity = (
            tf.matmul(video_dropped, tf.cast(self.video_weight, dtype))
            + tf.transpose(tf.matmul(query_dropped, tf.cast(self.query_weight, dtype)), [0, 2, 1])
            + tf.matmul(video_dropped * tf.cast(self.product_weight, dtype), query_dropped, transpose_b=True)
        )
        row_attention = tf.cast(masking.masked_softmax(similarity, query_mask[:, tf.newaxis, :], axis=2), dtype)
        column_attention = tf.cast(masking.masked_softmax(similarity, video_mask[:, :, tf.newaxis], axis=1), dtype)
        video_to_query = tf.matmul(row_attention, query)
        query_to_video = tf.matmul(row_attention, tf.matmul(column_attention, video, transpose_a=True))
        fused = tf.concat([video, video_to_query, video * video_to_query, video * query_to_video], axis=-1)
        return self.output_projection(fused), tf.cast(similarity, tf.float32)

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ConcatAttention(keras.layers.Layer):
    """CAT, the simple alternative to CQA in the paper's Table 8: [v_i; max-pooled query] projected to d.

    Call args and returns as `ContextQueryAttention`; the similarity output is None.
    """

    def build(self, video_shape, query_shape=None, *args):
        hidden_size = video_shape[-1]
        self.output_projection = keras.layers.Dense(hidden_size, name="output_projection")
        self.output_projection.build((*video_shape[:-1], 2 * hidden_size))

    def call(self, video, query, video_mask, query_mask, training=False):
        lowest = tf.constant(video.dtype.min, video.dtype)
        pooled = tf.reduce_max(tf.where(query_mask[:, :, tf.newaxis], query, lowest), axis=1)
        pooled = tf.broadcast_to(pooled[:, tf.newaxis, :], tf.shape(video))
        return self.output_projection(tf.concat([video, pooled], axis=-1)), None


@keras.saving.register_keras_serializable(package="nlvl_tf")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling of a sequence into one vector: a = softmax(masked(x w)), h = sum_j a_j x_j.

    Gives the sentence vector h_Q of query-guided highlighting (paper Sec. 3.5) and the clip vector of the nil
    prediction module (Eq. 12). No bias: a constant added to every score leaves the softmax unchanged.

    Call args:
        inputs: [B, L, d]; mask: [B, L] bool.
    Returns:
        [B, d].
    """

    def build(self, input_shape, *args):
        self.score_weight = self.add_weight(
            name="score_weight", shape=(input_shape[-1], 1), initializer="glorot_uniform"
        )

    def call(self, inputs, mask):
        scores = tf.squeeze(tf.matmul(inputs, tf.cast(self.score_weight, inputs.dtype)), axis=-1)
        weights = tf.cast(masking.masked_softmax(scores, mask), inputs.dtype)
        return tf.einsum("bl,bld->bd", weights, inputs)
