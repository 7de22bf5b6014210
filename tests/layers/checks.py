"""Shared assertions for layer tests: `run_layer_test` (keras-hub's harness, for our layers), serialization round
trip and padding invariance."""

import inspect

import keras
import numpy as np
import tensorflow as tf


def assert_round_trip(layer, call):
    """config -> from_config -> same weights -> same outputs. `call(layer)` runs the layer on fixed inputs."""
    expected = call(layer)
    clone = layer.__class__.from_config(layer.get_config())
    call(clone)  # builds the clone
    clone.set_weights(layer.get_weights())
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    assert clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    for got, want in zip(_flatten(call(clone)), _flatten(expected)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)


def _flatten(outputs):
    if isinstance(outputs, dict):
        return [outputs[key] for key in sorted(outputs)]
    if isinstance(outputs, (tuple, list)):
        return [o for o in outputs if o is not None]
    return [outputs]


def pad_with_noise(array, new_length, axis=1, seed=0):
    """Extends `array` along `axis` to `new_length` with random values (padding content must not matter)."""
    array = np.asarray(array)
    shape = list(array.shape)
    shape[axis] = new_length - array.shape[axis]
    noise = np.random.default_rng(seed).normal(size=shape).astype(array.dtype)
    return np.concatenate([array, noise], axis=axis)


def lengths_to_mask(lengths, max_length):
    return np.arange(max_length)[None, :] < np.asarray(lengths)[:, None]


def assert_valid_positions_equal(short, long, lengths, atol=1e-5):
    """Outputs [B, L, ...] and [B, L', ...] agree on each row's first `lengths[b]` positions."""
    short, long = np.asarray(short), np.asarray(long)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(long[row, :length], short[row, :length], atol=atol, rtol=1e-5)


def run_layer_test(
    layer_class,
    init_kwargs,
    inputs,
    expected_output_shapes,
    expected_num_trainable_weights,
    expected_num_non_trainable_weights=0,
    float32_outputs=(),
    untrained_weights=(),
    mixed_precision_tolerance=0.05,
):
    """What every layer must do, as keras-hub's `run_layer_test` checks it.

    - eager call: outputs (flattened) with `expected_output_shapes`, the given numbers of weights;
    - `get_config` -> `from_config` and Keras (de)serialization give a layer with the same outputs;
    - a symbolic call on `keras.KerasTensor`s gives the same output shapes (batch axis left unknown);
    - one training step: every trainable weight except `untrained_weights` (names) gets a finite, non-zero gradient;
    - with a per-layer `mixed_float16` policy the layer runs, keeps float32 variables, computes in float16 except the
      outputs listed in `float32_outputs` (indices of the flattened outputs: logits stay float32), and matches the
      float32 layer with the same weights within `mixed_precision_tolerance` (relative to the outputs' scale).

    Args:
        inputs: the positional call arguments (numpy arrays; bool arrays are masks).
    """
    layer = layer_class(**init_kwargs)
    outputs = _flatten(layer(*inputs))
    assert [tuple(o.shape) for o in outputs] == [tuple(s) for s in expected_output_shapes]
    assert len(layer.trainable_weights) == expected_num_trainable_weights, [w.path for w in layer.trainable_weights]
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, [
        w.path for w in layer.non_trainable_weights
    ]
    assert_round_trip(layer, lambda candidate: candidate(*inputs))
    _check_symbolic_call(layer_class, init_kwargs, inputs, expected_output_shapes)
    _check_training_step(layer, inputs, untrained_weights)
    _check_mixed_precision(layer, layer_class, init_kwargs, inputs, float32_outputs, mixed_precision_tolerance)


def _check_symbolic_call(layer_class, init_kwargs, inputs, expected_output_shapes):
    symbolic = [keras.KerasTensor((None, *np.shape(x)[1:]), dtype=np.asarray(x).dtype.name) for x in inputs]
    outputs = _flatten(layer_class(**init_kwargs)(*symbolic))
    assert [tuple(o.shape)[1:] for o in outputs] == [tuple(s)[1:] for s in expected_output_shapes]


def _takes_training(layer):
    return "training" in inspect.signature(layer.call).parameters


def _check_training_step(layer, inputs, untrained_weights):
    kwargs = {"training": True} if _takes_training(layer) else {}
    with tf.GradientTape() as tape:
        outputs = _flatten(layer(*inputs, **kwargs))
        loss = tf.add_n([tf.reduce_sum(tf.square(tf.where(tf.abs(o) < 1e29, o, 0.0))) for o in outputs])
    gradients = tape.gradient(loss, layer.trainable_weights)
    for weight, gradient in zip(layer.trainable_weights, gradients):
        if weight.name in untrained_weights:
            continue
        assert gradient is not None, f"no gradient reaches {weight.path}"
        gradient = tf.convert_to_tensor(gradient)
        assert np.all(np.isfinite(gradient)) and np.any(gradient != 0), f"zero or non-finite gradient of {weight.path}"


def _check_mixed_precision(layer, layer_class, init_kwargs, inputs, float32_outputs, tolerance):
    mixed = layer_class(**init_kwargs, dtype="mixed_float16")
    mixed(*inputs)
    mixed.set_weights(layer.get_weights())
    assert all(w.dtype == "float32" for w in mixed.weights), [(w.path, w.dtype) for w in mixed.weights]
    expected = _flatten(layer(*inputs))
    for index, (got, want) in enumerate(zip(_flatten(mixed(*inputs)), expected)):
        if not got.dtype.is_floating:
            continue
        assert got.dtype == ("float32" if index in float32_outputs else "float16"), (index, got.dtype)
        got, want = np.asarray(tf.cast(got, tf.float32)), np.asarray(want)
        valid = np.abs(want) < 1e29  # masked logits stay -1e30 in both
        scale = max(1.0, float(np.abs(want[valid]).max())) if valid.any() else 1.0
        np.testing.assert_allclose(got[valid], want[valid], atol=tolerance * scale, err_msg=f"output {index}")
