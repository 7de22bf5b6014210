"""Conditioned span predictor (paper Sec. 3.4, Eq. 4): the end LSTM reads the start LSTM's states."""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import arguments, lstm, masking

HEADS = ("mlp", "linear")


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ConditionedSpanPredictor(keras.layers.Layer):
    """Start and end boundary logits from two stacked unidirectional LSTMs.

    h_s = LSTM_start(X), h_e = LSTM_end(h_s); each head scores [h; X] per position. `head="mlp"` is the authors'
    Dense(d, ReLU) -> Dense(1); `head="linear"` is the paper's single linear layer (Eq. 4).

    Args:
        hidden_size: LSTM units and MLP width.
        head: "mlp" or "linear".

    Call arguments:
        features: [B, N, d_in]; mask: [B, N] bool.

    Returns:
        (start_logits, end_logits), each [B, N] float32 with padded positions masked.

    Example:
    >>> start_logits, end_logits = ConditionedSpanPredictor(hidden_size=128)(features, mask)
    """

    def __init__(self, hidden_size=128, head="mlp", **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = arguments.positive_int("hidden_size", hidden_size)
        self.head = arguments.choice("head", head, HEADS)

    def _make_head(self, name, inputs_shape):
        """The scoring layers of one boundary, as a tuple (which tf.train.Checkpoint tracks)."""
        head = (keras.layers.Dense(1, dtype=self.dtype_policy, name=f"{name}_output"),)
        if self.head == "mlp":
            hidden = keras.layers.Dense(
                self.hidden_size, activation="relu", dtype=self.dtype_policy, name=f"{name}_hidden"
            )
            head = (hidden, *head)
        for layer in head:
            layer.build(inputs_shape)
            inputs_shape = (*inputs_shape[:-1], layer.units)
        return head

    def build(self, features_shape, mask_shape=None):
        self.start_lstm = lstm.UnidirectionalLSTM(self.hidden_size, dtype=self.dtype_policy, name="start_lstm")
        self.end_lstm = lstm.UnidirectionalLSTM(self.hidden_size, dtype=self.dtype_policy, name="end_lstm")
        self.start_lstm.build(features_shape)
        self.end_lstm.build((*features_shape[:-1], self.hidden_size))
        head_input_shape = (*features_shape[:-1], self.hidden_size + features_shape[-1])
        self.start_head = self._make_head("start_head", head_input_shape)
        self.end_head = self._make_head("end_head", head_input_shape)

    @staticmethod
    def _score(head, states, features):
        scores = tf.concat([states, features], axis=-1)
        for layer in head:
            scores = layer(scores)
        return tf.squeeze(scores, -1)

    def call(self, features, mask):
        start_states = self.start_lstm(features)
        end_states = self.end_lstm(start_states)
        return (
            masking.mask_logits(self._score(self.start_head, start_states, features), mask),
            masking.mask_logits(self._score(self.end_head, end_states, features), mask),
        )

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "head": self.head}
