"""The LSTM and the conditioned span predictor (Eq. 4) against a numpy step loop."""

import numpy as np
import pytest

from nlvl_tf.model.layers import lstm, masking, predictor
from tests.layers import checks, reference

RNG = np.random.default_rng(3)
LENGTHS = [7, 4]


def _inputs(length=7, hidden=6):
    return RNG.normal(size=(2, length, hidden)).astype("float32"), checks.lengths_to_mask(LENGTHS, length)


def test_lstm_matches_numpy_step_loop_and_starts_with_forget_bias_one():
    x, _ = _inputs()
    layer = lstm.UnidirectionalLSTM(5)
    got = layer(x)
    kernel, recurrent, bias = [w.numpy() for w in layer.weights]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    np.testing.assert_allclose(got, reference.lstm(x.astype("float64"), kernel, recurrent, bias), atol=1e-5)
    assert layer.count_params() == 4 * (6 + 5) * 5 + 4 * 5  # one bias vector, as TF1's LSTMCell


@pytest.mark.parametrize("head", ["mlp", "linear"])
def test_predictor_matches_numpy(head):
    x, mask = _inputs()
    layer = predictor.ConditionedSpanPredictor(hidden_size=5, head=head)
    start, end = layer(x, mask)
    start_states = reference.lstm(x.astype("float64"), *[w.numpy() for w in layer.start_lstm.weights])
    end_states = reference.lstm(start_states, *[w.numpy() for w in layer.end_lstm.weights])

    def head_logits(head_model, states):
        y = np.concatenate([states, x], axis=-1)
        dense = list(head_model)
        for i, dense_layer in enumerate(dense):
            kernel, bias = [w.numpy() for w in dense_layer.weights]
            y = y @ kernel + bias
            if i < len(dense) - 1:
                y = np.maximum(y, 0)
        return y[..., 0]

    for got, want in (
        (start, head_logits(layer.start_head, start_states)),
        (end, head_logits(layer.end_head, end_states)),
    ):
        np.testing.assert_allclose(np.where(mask, got, 0), np.where(mask, want, 0), atol=1e-5)
        assert np.all(got.numpy()[~mask] == masking.MASK_VALUE)


def test_predictor_parameter_count_matches_the_authors():
    x = np.zeros((1, 3, 128), "float32")
    layer = predictor.ConditionedSpanPredictor(128)
    layer(x, np.ones((1, 3), bool))
    assert layer.count_params() == 329_218


def test_padding_invariance_and_round_trips():
    x, mask = _inputs()
    layer = predictor.ConditionedSpanPredictor(hidden_size=5)
    short = layer(x, mask)
    long = layer(checks.pad_with_noise(x, 14), checks.lengths_to_mask(LENGTHS, 14))
    for short_output, long_output in zip(short, long):
        checks.assert_valid_positions_equal(short_output, long_output, LENGTHS)
    checks.assert_round_trip(predictor.ConditionedSpanPredictor(4, head="linear"), lambda p: p(x, mask))
    checks.assert_round_trip(lstm.UnidirectionalLSTM(3), lambda p: p(x))


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="head"):
        predictor.ConditionedSpanPredictor(head="transformer")
    with pytest.raises(ValueError, match="units"):
        lstm.UnidirectionalLSTM(0)


def test_lstm_gradients_equal_autodiff_of_an_unrolled_lstm():
    """The hand-written BPTT against TensorFlow's autodiff of a plain unrolled LSTM with the same weights."""
    import tensorflow as tf

    x, _ = _inputs(length=9)
    layer = lstm.UnidirectionalLSTM(5)
    layer(x)
    kernel, recurrent, bias = layer.kernel, layer.recurrent_kernel, layer.bias
    x = tf.constant(x)
    upstream = tf.constant(RNG.normal(size=(2, 9, 5)).astype("float32"))

    def unrolled(inputs):
        hidden = cell = tf.zeros([2, 5])
        outputs = []
        for t in range(inputs.shape[1]):
            i, f, g, o = tf.split(inputs[:, t] @ kernel + hidden @ recurrent + bias, 4, axis=-1)
            cell = tf.sigmoid(f) * cell + tf.sigmoid(i) * tf.tanh(g)
            hidden = tf.sigmoid(o) * tf.tanh(cell)
            outputs.append(hidden)
        return tf.stack(outputs, axis=1)

    grads = []
    for fn in (layer, unrolled):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * upstream)
        grads.append(tape.gradient(loss, [x, kernel, recurrent, bias]))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("static_batch", [True, False])
def test_lstm_in_parallel_chunks_equals_one_loop(monkeypatch, static_batch):
    """A batch cut into chunks of 9, 9 and 7 rows (run side by side on CPUs) gives the numpy LSTM's states and the
    unchunked gradients, with the batch size static (training) or known only at run time (an exported signature)."""
    import tensorflow as tf

    x = tf.constant(RNG.normal(size=(25, 6, 4)).astype("float32"))
    upstream = tf.constant(RNG.normal(size=(25, 6, 3)).astype("float32"))
    layer = lstm.UnidirectionalLSTM(3)
    layer(x[:1])

    def states_and_gradients(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            states = layer(inputs)
            loss = tf.reduce_sum(states * upstream)
        return states, tape.gradient(loss, [inputs, *layer.trainable_weights])

    signature = [tf.TensorSpec([25 if static_batch else None, 6, 4], tf.float32)]
    monkeypatch.setattr(lstm, "_parallel_loops", lambda: 1)
    want_states, want_grads = states_and_gradients(x)
    monkeypatch.setattr(lstm, "_parallel_loops", lambda: 3)
    assert lstm._num_chunks(25) == 3
    states, grads = tf.function(states_and_gradients, input_signature=signature)(x)
    np.testing.assert_allclose(
        states, reference.lstm(x.numpy().astype("float64"), *[w.numpy() for w in layer.weights]), atol=1e-5
    )
    np.testing.assert_allclose(states, want_states, atol=1e-6)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, atol=1e-5)
