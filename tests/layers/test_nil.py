"""The nil prediction module (Eq. 11-12) as the composition of its parts, padding and serialization."""

import numpy as np

from nlvl_tf.model.layers import nil
from tests.layers import checks, reference

RNG = np.random.default_rng(5)
LENGTHS = [8, 3, 1]


def test_nil_logit_is_linear_score_of_attention_pooled_encoded_clip():
    clips = RNG.normal(size=(3, 8, 8)).astype("float32")
    mask = checks.lengths_to_mask(LENGTHS, 8)
    layer = nil.NilPrediction(num_heads=2, max_position=16)
    encoded, logits = layer(clips, mask)
    np.testing.assert_allclose(encoded, layer.encoder(clips, mask), atol=1e-6)
    pooled = reference.attention_pooling(encoded.numpy().astype("float64"), mask, layer.pooling.score_weight.numpy())
    kernel, bias = [w.numpy() for w in layer.scorer.weights]
    np.testing.assert_allclose(logits, (pooled @ kernel + bias)[:, 0], atol=1e-5)
    padded_encoded, padded_logits = layer(checks.pad_with_noise(clips, 16), checks.lengths_to_mask(LENGTHS, 16))
    np.testing.assert_allclose(padded_logits, logits, atol=1e-5)
    checks.assert_valid_positions_equal(encoded, padded_encoded, LENGTHS)


def test_round_trip():
    clips = RNG.normal(size=(2, 4, 8)).astype("float32")
    mask = checks.lengths_to_mask([4, 2], 4)
    checks.assert_round_trip(
        nil.NilPrediction(num_heads=2, kernel_size=3, num_conv_layers=1, max_position=6, dropout=0.1),
        lambda layer: layer(clips, mask),
    )
