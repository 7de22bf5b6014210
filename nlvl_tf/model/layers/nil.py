"""Nil prediction module of VSLNet-L (paper Sec. 3.6.1, Eq. 11-12): does a clip segment overlap the moment?"""

import keras
import tensorflow as tf

from nlvl_tf.model.layers import arguments, attention, encoder


@keras.saving.register_keras_serializable(package="nlvl_tf")
class NilPrediction(keras.layers.Layer):
    """Encodes each clip's query-attended features with its OWN feature encoder, pools them and scores the clip.

    C^ = FeatureEncoder_NPM(C^q); h = attention pooling of C^; nil logit = Dense(1)(h) (the paper's "single feed-forward
    layer"; sigmoid of it is S_nil).

    Args:
        num_heads, kernel_size, num_conv_layers, max_position, dropout: of the module's feature encoder.

    Call arguments:
        clips: [B*K, l, d]; mask: [B*K, l] bool.

    Returns:
        (encoded clips [B*K, l, d], nil logits [B*K] float32).

    Example:
    >>> encoded, nil_logits = NilPrediction(max_position=200)(clips, clip_mask)
    """

    def __init__(self, num_heads=8, kernel_size=7, num_conv_layers=4, max_position=200, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder_config = dict(
            num_heads=arguments.positive_int("num_heads", num_heads),
            kernel_size=arguments.positive_int("kernel_size", kernel_size),
            num_conv_layers=arguments.positive_int("num_conv_layers", num_conv_layers),
            max_position=arguments.positive_int("max_position", max_position),
            dropout=arguments.rate("dropout", dropout),
        )

    def build(self, clips_shape, mask_shape=None):
        self.encoder = encoder.FeatureEncoder(**self.encoder_config, dtype=self.dtype_policy, name="nil_encoder")
        self.pooling = attention.AttentionPooling(dtype=self.dtype_policy, name="nil_pooling")
        self.scorer = keras.layers.Dense(1, dtype=self.dtype_policy, name="nil_scorer")
        self.encoder.build(clips_shape)
        self.pooling.build(clips_shape)
        self.scorer.build((clips_shape[0], clips_shape[-1]))

    def call(self, clips, mask, training=None):
        encoded = self.encoder(clips, mask, training=training)
        logits = tf.squeeze(self.scorer(self.pooling(encoded, mask)), axis=-1)
        return encoded, tf.cast(logits, tf.float32)

    def get_config(self):
        return {**super().get_config(), **self.encoder_config}
