"""Conditioned span predictor (paper Sec. 3.4, Eq. 4): the end LSTM reads the start LSTM's states."""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import lstm, masking

HEADS = ("mlp", "linear")


@keras.saving.register_keras_serializable(package="nlvl_tf")
class ConditionedSpanPredictor(keras.layers.Layer):
    """Start and end boundary logits from two stacked unidirectional LSTMs.

    h_s = LSTM_start(X), h_e = LSTM_end(h_s); each head scores [h; X] per position. `head="mlp"` is the authors'
    Dense(d, ReLU) -> Dense(1); `head="linear"` is the paper's single linear layer (Eq. 4).

    Args:
        hidden_size: LSTM units and MLP width.
        head: "mlp" or "linear".
    Call args:
        features: [B, N, d_in]; mask: [B, N] bool.
    Returns:
        (start_logits, end_logits), each [B, N] float32 with padded positions masked.
    """

    def __init__(self, hidden_size=128, head="mlp", **kwargs):
        super().__init__(**kwargs)
        if int(hidden_size) <= 0:
            raise ValueError(f"hidden_size must be positive, got {hidden_size}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.hidden_size = int(hidden_size)
        self.head = head

    def _make_head(self, name, input_shape):
        layers = [keras.layers.Dense(1, name=f"{name}_output")]
        if self.head == "mlp":
            layers.insert(0, keras.layers.Dense(self.hidden_size, activation="relu", name=f"{name}_hidden"))
        head = keras.Sequential(layers, name=name)
        head.build(input_shape)
        return head

    def build(self, features_shape, *args):
        self.start_lstm = lstm.UnidirectionalLSTM(self.hidden_size, name="start_lstm")
        self.end_lstm = lstm.UnidirectionalLSTM(self.hidden_size, name="end_lstm")
        self.start_lstm.build(features_shape)
        self.end_lstm.build((*features_shape[:-1], self.hidden_size))
        head_input_shape = (*features_shape[:-1], self.hidden_size + features_shape[-1])
        self.start_head = self._make_head("start_head", head_input_shape)
        self.end_head = self._make_head("end_head", head_input_shape)

    def call(self, features, mask):
        start_states = self.start_lstm(features)
        end_states = self.end_lstm(start_states)
        start_logits = self.start_head(tf.concat([start_states, features], axis=-1))
        end_logits = self.end_head(tf.concat([end_states, features], axis=-1))
        return (
            masking.mask_logits(tf.squeeze(start_logits, -1), mask),
            masking.mask_logits(tf.squeeze(end_logits, -1), mask),
        )

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "head": self.head}
