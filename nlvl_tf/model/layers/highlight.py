"""Query-guided highlighting (paper Sec. 3.5, Eq. 7): score each video position as foreground and re-weight it."""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import linear, masking


@keras.saving.register_keras_serializable(package="nlvl_tf")
class QueryGuidedHighlighting(keras.layers.Layer):
    """Concatenates the sentence vector to every position, scores it with a sigmoid and re-weights the features.

    The authors' code projects [v_i; h_Q] back to d before scoring (`project_concat=True`, the default); the paper
    scores and re-weights the 2d concatenation itself (`project_concat=False`).

    Args:
        project_concat: project [v_i; h_Q] to d before scoring (the authors) or not (the paper).

    Call arguments:
        features: [B, N, d]; sentence: [B, d]; mask: [B, N] bool.

    Returns:
        (highlighted features [B, N, d or 2d], highlight logits [B, N] float32, masked).

    Example:
    >>> highlighted, logits = QueryGuidedHighlighting()(features, sentence, mask)
    """

    def __init__(self, project_concat=True, **kwargs):
        super().__init__(**kwargs)
        self.project_concat = bool(project_concat)

    def build(self, features_shape, sentence_shape, mask_shape=None):
        hidden_size = features_shape[-1]
        concat_shape = (*features_shape[:-1], 2 * hidden_size)
        if self.project_concat:
            self.concat_projection = keras.layers.Dense(hidden_size, dtype=self.dtype_policy, name="concat_projection")
            self.concat_projection.build(concat_shape)
        self.scorer = keras.layers.Dense(1, dtype=self.dtype_policy, name="scorer")
        self.scorer.build((*features_shape[:-1], hidden_size if self.project_concat else 2 * hidden_size))

    def call(self, features, sentence, mask):
        if self.project_concat:
            combined = self._project_concatenation(features, sentence)
        else:
            combined = tf.concat([features, tf.broadcast_to(sentence[:, tf.newaxis, :], tf.shape(features))], axis=-1)
        logits = masking.mask_logits(tf.squeeze(self.scorer(combined), axis=-1), mask)
        return combined * tf.cast(tf.sigmoid(logits), combined.dtype)[..., tf.newaxis], logits

    def _project_concatenation(self, features, sentence):
        """Dense([v_i; h_Q]) computed as v_i W_v + (h_Q W_q + b): the sentence half once per video instead of at every
        position, and no [B, N, 2d] concatenation (half the projection's multiply-adds)."""
        hidden_size = features.shape[-1]
        kernel, bias = self.concat_projection.kernel, self.concat_projection.bias
        per_video = linear.project(tf.cast(sentence, features.dtype), kernel[hidden_size:], bias)
        return linear.project(features, kernel[:hidden_size]) + per_video[:, tf.newaxis, :]

    def get_config(self):
        return {**super().get_config(), "project_concat": self.project_concat}
