"""Feature encoder, multi-head self-attention and the BiLSTM encoder: numpy equations, padding, serialization."""

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.model.layers import encoder
from tests.layers import checks, reference

RNG = np.random.default_rng(0)
LENGTHS = [9, 5, 1]


def _inputs(length=9, hidden=16):
    x = RNG.normal(size=(len(LENGTHS), length, hidden)).astype("float32")
    return x, checks.lengths_to_mask(LENGTHS, length)


def _numpy_encoder(layer, x, mask):
    def weights(sub):
        return [w.numpy() for w in sub.weights]

    y = x + layer.positional_embedding.numpy()[: x.shape[1]]
    m = mask[..., None]
    for block in layer.conv_blocks:
        gamma, beta = weights(block.norm)
        kernel = block.depthwise.weights[0].numpy()[:, :, 0]
        w, b = weights(block.pointwise)
        z = reference.depthwise_conv_same(reference.layer_norm(y, gamma, beta) * m, kernel)
        y = y + np.maximum(z @ w + b, 0.0)
    gamma, beta = weights(layer.attention_norm)
    attn = layer.attention
    z = reference.multi_head_attention(
        reference.layer_norm(y, gamma, beta),
        mask,
        *weights(attn.query_projection),
        *weights(attn.key_projection),
        *weights(attn.value_projection),
        attn.num_heads,
    )
    y = y + z
    gamma, beta = weights(layer.feed_forward_norm)
    w, b = weights(layer.feed_forward)
    return y + reference.layer_norm(y, gamma, beta) @ w + b


def test_feature_encoder_matches_numpy_equations():
    x, mask = _inputs()
    layer = encoder.FeatureEncoder(num_heads=4, kernel_size=7, num_conv_layers=4, max_position=32)
    got = layer(x, mask).numpy()
    want = _numpy_encoder(layer, x.astype("float64"), mask)
    checks.assert_valid_positions_equal(want, got, LENGTHS, atol=1e-4)


def test_multi_head_attention_ignores_masked_keys():
    x, mask = _inputs()
    layer = encoder.MultiHeadSelfAttention(num_heads=4)
    got = layer(x, mask).numpy()
    w = [v.numpy() for v in layer.weights]
    want = reference.multi_head_attention(x.astype("float64"), mask, *w, num_heads=4)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoder.FeatureEncoder(num_heads=4, max_position=32),
        lambda: encoder.BiLSTMEncoder(),
        lambda: encoder.MultiHeadSelfAttention(num_heads=4),
    ],
)
def test_padding_to_twice_the_length_changes_no_valid_output(make):
    x, mask = _inputs()
    layer = make()
    short = layer(x, mask)
    long_x = checks.pad_with_noise(x, 2 * x.shape[1])
    long = layer(long_x, checks.lengths_to_mask(LENGTHS, 2 * x.shape[1]))
    checks.assert_valid_positions_equal(short, long, LENGTHS)


def test_full_length_sequence_padded_further_is_unchanged():
    """A video that fills n exactly must give the same outputs when a batch pads it to 2n (convolution edges)."""
    x = RNG.normal(size=(1, 12, 8)).astype("float32")
    layer = encoder.FeatureEncoder(num_heads=2, max_position=24)
    short = layer(x, np.ones((1, 12), bool))
    long = layer(checks.pad_with_noise(x, 24), checks.lengths_to_mask([12], 24))
    checks.assert_valid_positions_equal(short, long, [12])


def test_bilstm_encoder_matches_forward_and_reversed_numpy_lstm():
    x, mask = _inputs(hidden=8)
    layer = encoder.BiLSTMEncoder()
    got = layer(x, mask).numpy()
    forward = reference.lstm(x.astype("float64"), *[w.numpy() for w in layer.forward_lstm.weights])
    for row, length in enumerate(LENGTHS):
        reversed_row = x[row : row + 1, :length][:, ::-1].astype("float64")
        backward = reference.lstm(reversed_row, *[w.numpy() for w in layer.backward_lstm.weights])[:, ::-1]
        np.testing.assert_allclose(got[row, :length, :4], forward[row, :length], atol=1e-5)
        np.testing.assert_allclose(got[row, :length, 4:], backward[0], atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoder.FeatureEncoder(num_heads=4, kernel_size=5, num_conv_layers=2, max_position=16, dropout=0.1),
        lambda: encoder.BiLSTMEncoder(),
        lambda: encoder.MultiHeadSelfAttention(num_heads=2, dropout=0.1),
    ],
)
def test_serialization_round_trip(make):
    x, mask = _inputs()
    checks.assert_round_trip(make(), lambda layer: layer(x, mask))


def test_longer_than_positional_table_is_a_clear_error():
    x, mask = _inputs(length=9)
    with pytest.raises(ValueError, match="exceeds max_position=8"):
        encoder.FeatureEncoder(num_heads=4, max_position=8)(x, mask)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dropout": 1.0}, "dropout"), ({"kernel_size": 0}, "kernel_size"), ({"max_position": -1}, "max_position")],
)
def test_invalid_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encoder.FeatureEncoder(**kwargs)


def test_heads_must_divide_hidden_size():
    x, mask = _inputs(hidden=10)
    with pytest.raises(ValueError, match="not a multiple of num_heads=4"):
        encoder.MultiHeadSelfAttention(num_heads=4)(x, mask)


def test_dropout_is_active_only_in_training():
    x, mask = _inputs()
    layer = encoder.FeatureEncoder(num_heads=4, max_position=32, dropout=0.5)
    np.testing.assert_array_equal(layer(x, mask).numpy(), layer(x, mask).numpy())
    assert not np.allclose(layer(x, mask, training=True).numpy(), layer(x, mask).numpy())
    assert tf.reduce_all(tf.math.is_finite(layer(x, mask, training=True)))


def test_philox_dropout_scales_kept_values_and_drops_about_rate():
    from nlvl_tf.model.layers import dropout

    layer = dropout.Dropout(0.25, seed=3)
    x = np.ones((200, 100), "float32")
    y = layer(x, training=True).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer(x).numpy(), x)
    again = tf.function(lambda v: layer(v, training=True), jit_compile=True)(x).numpy()
    assert abs((again == 0).mean() - 0.25) < 0.02 and not np.array_equal(again, y)
    checks.assert_round_trip(dropout.Dropout(0.1, seed=1), lambda d: d(x))


def test_dropout_rate_is_rounded_to_256ths_and_the_gradient_is_the_mask():
    from nlvl_tf.model.layers import dropout

    layer = dropout.Dropout(0.2, seed=5)
    assert layer.drop_threshold == 51  # 0.2 * 256 = 51.2
    x = tf.constant(np.ones((3001, 7), "float32"))  # size not a multiple of 4: the last draw word is cut
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    scale = np.float32(256 / 205)
    assert set(np.unique(y.numpy())) == {0.0, scale}
    assert abs((y.numpy() == 0).mean() - 51 / 256) < 0.01
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), y.numpy())  # d y / d x = the scaled mask (x = 1)


def test_depthwise_conv_matches_the_keras_layer_and_its_gradients():
    """The [B, L, 1, C] layout against keras.layers.DepthwiseConv1D with the same kernel: outputs and both gradients."""
    import keras

    x = tf.constant(RNG.normal(size=(3, 11, 5)).astype("float32"))
    ours = encoder.DepthwiseConv1D(7)
    theirs = keras.layers.DepthwiseConv1D(7, padding="same", use_bias=False)
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.kernel.assign(ours.kernel)
    results = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 1.0 + y.shape[-1]))
        results.append([y, *tape.gradient(loss, [x, layer.kernel])])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, atol=1e-5)
    checks.assert_round_trip(encoder.DepthwiseConv1D(3), lambda layer: layer(x))
    with pytest.raises(ValueError, match="padding='same'"):
        encoder.DepthwiseConv1D(3, strides=2)
