"""Shared assertions for layer tests: serialization round trip and padding invariance."""

import keras
import numpy as np


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
