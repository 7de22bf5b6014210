"""The Keras I3D against independent versions: Unit3D and the Inception module against numpy (SAME padding, odd and
even sizes, 224 x 224), the whole network's feature and logits heads against plain TF ops with explicit padding."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.video import i3d
from tests.layers import checks
from tests.video import reference

RNG = np.random.default_rng(12)


def _unit_params(kernel, cin, out):
    return reference.random_params(RNG, shapes={"u": (kernel, cin, out)})["u"]


@pytest.mark.parametrize(
    "shape, kernel, strides",
    [
        ((1, 5, 9, 11, 4), (3, 3, 3), (1, 1, 1)),  # odd sizes, stride 1: symmetric padding
        ((2, 7, 9, 13, 3), (7, 7, 7), (2, 2, 2)),  # odd sizes, stride 2: pad k - size % s = 6 (3 + 3)
        ((1, 6, 10, 8, 3), (7, 7, 7), (2, 2, 2)),  # even sizes, stride 2: pad k - s = 5, 2 before and 3 after
        ((1, 4, 11, 12, 5), (1, 3, 3), (1, 2, 2)),  # mixed kernel / stride per axis
    ],
)
def test_unit3d_equals_numpy_with_the_same_rule(shape, kernel, strides):
    x = RNG.uniform(-1, 1, shape).astype(np.float32)
    p = _unit_params(kernel, shape[-1], 6)
    unit = i3d.Unit3D(6, kernel, strides)
    unit.build(shape)
    reference.set_unit(unit, p)
    want = reference.unit3d(x.astype(np.float64), p, strides)
    got = unit(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    assert np.mean(want > 0) > 0.2  # the ReLU passes a fair share: the comparison is not of zeros


def test_unit3d_at_224_equals_numpy():
    """Conv3d_1a_7x7's shape on a 224 x 224 input (8 frames)."""
    x = RNG.uniform(-1, 1, (1, 8, 224, 224, 3)).astype(np.float32)
    p = _unit_params((7, 7, 7), 3, 64)
    unit = i3d.Unit3D(64, 7, 2)
    unit.build(x.shape)
    reference.set_unit(unit, p)
    np.testing.assert_allclose(unit(x).numpy(), reference.unit3d(x.astype(np.float64), p, (2, 2, 2)), atol=1e-4)


def test_unit3d_training_uses_batch_statistics_and_the_classifier_has_a_bias():
    x = RNG.normal(size=(2, 4, 5, 6, 3)).astype(np.float32)
    p = _unit_params((3, 3, 3), 3, 4)
    unit = i3d.Unit3D(4, 3)
    unit.build(x.shape)
    reference.set_unit(unit, p)
    conv = reference.conv3d_same(x.astype(np.float64), p["w"], (1, 1, 1))
    mean, var = conv.mean(axis=(0, 1, 2, 3)), conv.var(axis=(0, 1, 2, 3))
    want = np.maximum((conv - mean) / np.sqrt(var + 1e-3) * p["gamma"] + p["beta"], 0)
    np.testing.assert_allclose(unit(x, training=True).numpy(), want, atol=1e-4)

    classifier = i3d.Unit3D(5, 1, use_batch_norm=False, use_bias=True, activation=None)
    classifier.build(x.shape)
    q = reference.random_params(RNG, num_classes=5, shapes={})["logits"]
    classifier.kernel.assign(RNG.normal(size=(1, 1, 1, 3, 5)).astype(np.float32))
    classifier.bias.assign(q["b"])
    want = x @ classifier.kernel.numpy()[0, 0, 0] + q["b"]
    np.testing.assert_allclose(classifier(x).numpy(), want, atol=1e-5)


def test_inception_module_equals_numpy_at_an_odd_size():
    widths = (4, 3, 5, 2, 3, 4)
    x = RNG.uniform(-1, 1, (1, 3, 7, 9, 6)).astype(np.float32)
    module = i3d.InceptionModule(widths, name="Mixed_test")
    module.build(x.shape)
    b0, b1a, b1b, b2a, b2b, b3b = widths
    shapes = {
        "Mixed_test.b0": ((1,) * 3, 6, b0),
        "Mixed_test.b1a": ((1,) * 3, 6, b1a),
        "Mixed_test.b1b": ((3,) * 3, b1a, b1b),
        "Mixed_test.b2a": ((1,) * 3, 6, b2a),
        "Mixed_test.b2b": ((3,) * 3, b2a, b2b),
        "Mixed_test.b3b": ((1,) * 3, 6, b3b),
    }
    params = reference.random_params(RNG, shapes=shapes)
    for name, p in params.items():
        if name != "logits":
            reference.set_unit(getattr(module, name.split(".")[1]), p)
    want = reference.inception(x.astype(np.float64), params, "Mixed_test")
    got = module(x).numpy()
    assert got.shape == (1, 3, 7, 9, b0 + b1b + b2b + b3b)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def network():
    """The Keras I3D with random weights of the real shapes, and the same parameters for the reference."""
    params = reference.random_params(np.random.default_rng(3), num_classes=7)
    model = i3d.build(num_classes=7)
    reference.set_network(model, params)
    return model, params


@pytest.mark.parametrize("shape, rows", [((1, 24, 224, 224, 3), 2), ((1, 9, 195, 201, 3), 1)])
def test_network_feature_and_logits_equal_plain_tf_ops(network, shape, rows):
    """224 x 224 x 24 frames (the presets' input: 2 rows) and the minimum 9 frames at an odd size (the pool leaves
    2 x 2 spatial positions there, averaged)."""
    model, params = network
    x = np.random.default_rng(shape[1]).uniform(-1, 1, shape).astype(np.float32)
    outputs = tf.function(lambda x: model(x, training=False))(x)
    want_feature, want_logits = reference.network(tf.constant(x), params)
    assert outputs["feature"].shape == (1, rows, 1024) == want_feature.shape
    assert i3d.feature_rows(shape[1]) == rows
    assert np.std(want_feature) > 0.1  # activations stayed of order 1
    np.testing.assert_allclose(outputs["feature"].numpy(), want_feature, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(outputs["logits"].numpy(), want_logits, atol=1e-4, rtol=1e-4)


def test_too_few_frames_or_pixels_is_a_clear_error(network):
    model, _ = network
    with pytest.raises(tf.errors.InvalidArgumentError, match="I3D needs at least 9 frames of at least 193 x 193"):
        model(tf.zeros([1, 8, 193, 193, 3]))
    assert i3d.MIN_FRAMES == 9 and i3d.MIN_SIDE == 193
    assert [i3d.feature_rows(t) for t in (8, 9, 16, 17, 24, 25, 32, 33)] == [0, 1, 1, 2, 2, 3, 3, 4]


def test_arguments_are_checked_and_configs_round_trip():
    with pytest.raises(ValueError, match="kernel_size must be a positive int or three"):
        i3d.Unit3D(4, (3, 3))
    with pytest.raises(ValueError, match="branch_filters must be six"):
        i3d.InceptionModule((1, 2, 3))
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        i3d.InceptionI3D(num_classes=0)
    x = RNG.normal(size=(1, 3, 5, 5, 4)).astype(np.float32)
    checks.assert_round_trip(i3d.Unit3D(3, (1, 3, 3), (1, 2, 2)), lambda layer: layer(x))
    checks.assert_round_trip(i3d.InceptionModule((2, 2, 3, 1, 2, 2)), lambda layer: layer(x))
    config = i3d.InceptionI3D(num_classes=157, dropout=0.3).get_config()
    assert (config["num_classes"], config["dropout"]) == (157, 0.3)
    assert i3d.InceptionI3D.from_config(config).num_classes == 157


def test_unit3d_runs_under_a_mixed_precision_policy():
    x = RNG.uniform(-1, 1, (1, 4, 9, 9, 3)).astype(np.float32)
    p = _unit_params((3, 3, 3), 3, 8)
    exact = i3d.Unit3D(8, 3, 2)
    mixed = i3d.Unit3D(8, 3, 2, dtype=keras.DTypePolicy("mixed_bfloat16"))
    for unit in (exact, mixed):
        unit.build(x.shape)
        reference.set_unit(unit, p)
    out = mixed(tf.cast(x, tf.bfloat16))
    assert out.dtype == tf.bfloat16 and mixed.kernel.dtype == "float32"
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), exact(x).numpy(), atol=0.1, rtol=0.05)
