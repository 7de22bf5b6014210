"""Independent versions of I3D for the tests: numpy (Unit3D, max-pool, Inception module) and plain TensorFlow ops with
explicit padding (the whole network), written from the paper's description, not from nlvl_tf.video.i3d.

Parameters are dicts keyed by the PyTorch port's unit names ("Conv3d_1a_7x7", "Mixed_4b.b1b", "logits") holding
w [t, h, w, in, out], gamma, beta, mean, var (and b for the classifier).
"""

import numpy as np
import tensorflow as tf

EPS = 1e-3

# The network as text: "unit NAME OUT K STRIDE", "pool NAME K STRIDE" (k/stride as t,h,w), "mixed NAME six widths".
ARCHITECTURE = """
unit Conv3d_1a_7x7 64 7,7,7 2,2,2
pool MaxPool3d_2a_3x3 1,3,3 1,2,2
unit Conv3d_2b_1x1 64 1,1,1 1,1,1
unit Conv3d_2c_3x3 192 3,3,3 1,1,1
pool MaxPool3d_3a_3x3 1,3,3 1,2,2
mixed Mixed_3b 64 96 128 16 32 32
mixed Mixed_3c 128 128 192 32 96 64
pool MaxPool3d_4a_3x3 3,3,3 2,2,2
mixed Mixed_4b 192 96 208 16 48 64
mixed Mixed_4c 160 112 224 24 64 64
mixed Mixed_4d 128 128 256 24 64 64
mixed Mixed_4e 112 144 288 32 64 64
mixed Mixed_4f 256 160 320 32 128 128
pool MaxPool3d_5a_2x2 2,2,2 2,2,2
mixed Mixed_5b 256 160 320 32 128 128
mixed Mixed_5c 384 192 384 48 128 128
"""


def layers():
    """[(kind, name, args)] parsed from ARCHITECTURE."""
    parsed = []
    for line in ARCHITECTURE.strip().splitlines():
        kind, name, *rest = line.split()
        if kind == "unit":
            parsed.append((kind, name, (int(rest[0]), _ints(rest[1]), _ints(rest[2]))))
        elif kind == "pool":
            parsed.append((kind, name, (_ints(rest[0]), _ints(rest[1]))))
        else:
            parsed.append((kind, name, tuple(int(v) for v in rest)))
    return parsed


def _ints(text):
    return tuple(int(v) for v in text.split(","))


def unit_shapes():
    """{unit name: (kernel t h w, in channels, out channels)} of the whole network, classifier excluded."""
    shapes, channels = {}, 3
    for kind, name, args in layers():
        if kind == "unit":
            out, kernel, _ = args
            shapes[name] = (kernel, channels, out)
            channels = out
        elif kind == "mixed":
            b0, b1a, b1b, b2a, b2b, b3b = args
            for branch, kernel, cin, out in (
                ("b0", 1, channels, b0),
                ("b1a", 1, channels, b1a),
                ("b1b", 3, b1a, b1b),
                ("b2a", 1, channels, b2a),
                ("b2b", 3, b2a, b2b),
                ("b3b", 1, channels, b3b),
            ):
                shapes[f"{name}.{branch}"] = ((kernel,) * 3, cin, out)
            channels = b0 + b1b + b2b + b3b
    return shapes


def same_padding(size, kernel, stride):
    """TensorFlow's SAME rule: (before, after), the smaller half before."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pads(shape, kernel, strides):
    return [(0, 0), *(same_padding(shape[1 + i], kernel[i], strides[i]) for i in range(3)), (0, 0)]


def conv3d_same(x, w, strides):
    """Brute-force 'SAME' 3-D convolution, x [B, T, H, W, C] float64, w [t, h, w, in, out]."""
    padded = np.pad(x, _pads(x.shape, w.shape[:3], strides))
    out_sizes = [-(-x.shape[1 + i] // strides[i]) for i in range(3)]
    out = np.zeros((x.shape[0], *out_sizes, w.shape[-1]))
    st, sh, sw = strides
    for a in range(w.shape[0]):
        for b in range(w.shape[1]):
            for c in range(w.shape[2]):
                patch = padded[
                    :,
                    a : a + st * (out_sizes[0] - 1) + 1 : st,
                    b : b + sh * (out_sizes[1] - 1) + 1 : sh,
                    c : c + sw * (out_sizes[2] - 1) + 1 : sw,
                ]
                out += patch @ w[a, b, c]
    return out


def max_pool_same(x, kernel, strides):
    """'SAME' max-pool: padding never wins (-inf)."""
    padded = np.pad(x, _pads(x.shape, kernel, strides), constant_values=-np.inf)
    out_sizes = [-(-x.shape[1 + i] // strides[i]) for i in range(3)]
    out = np.full((x.shape[0], *out_sizes, x.shape[-1]), -np.inf)
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            for c in range(kernel[2]):
                patch = padded[
                    :,
                    a : a + strides[0] * (out_sizes[0] - 1) + 1 : strides[0],
                    b : b + strides[1] * (out_sizes[1] - 1) + 1 : strides[1],
                    c : c + strides[2] * (out_sizes[2] - 1) + 1 : strides[2],
                ]
                out = np.maximum(out, patch)
    return out


def unit3d(x, p, strides=(1, 1, 1)):
    """Conv (SAME) -> inference batch norm -> ReLU, in numpy."""
    y = conv3d_same(x, p["w"], strides)
    y = (y - p["mean"]) / np.sqrt(p["var"] + EPS) * p["gamma"] + p["beta"]
    return np.maximum(y, 0)


def inception(x, params, name):
    """The Inception module in numpy: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max-pool -> 1x1, concatenated."""
    p = {branch: params[f"{name}.{branch}"] for branch in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")}
    return np.concatenate(
        [
            unit3d(x, p["b0"]),
            unit3d(unit3d(x, p["b1a"]), p["b1b"]),
            unit3d(unit3d(x, p["b2a"]), p["b2b"]),
            unit3d(max_pool_same(x, (3, 3, 3), (1, 1, 1)), p["b3b"]),
        ],
        axis=-1,
    )


# ------------------------------------------------------------------------- the whole network in plain TF ops


def _tf_pad(x, kernel, strides, value=0.0):
    return tf.pad(x, _pads(x.shape, kernel, strides), constant_values=value)


def _tf_unit(x, p, strides=(1, 1, 1)):
    y = tf.nn.conv3d(_tf_pad(x, p["w"].shape[:3], strides), p["w"], (1, *strides, 1), "VALID")
    y = (y - p["mean"]) / tf.sqrt(p["var"] + EPS) * p["gamma"] + p["beta"]
    return tf.nn.relu(y)


def _tf_pool(x, kernel, strides):
    return tf.nn.max_pool3d(_tf_pad(x, kernel, strides, -np.inf), (1, *kernel, 1), (1, *strides, 1), "VALID")


def network(x, params):
    """(feature [B, T', 1024], logits [B, T', classes]) of I3D in plain TF ops, float32, explicit SAME padding."""
    for kind, name, args in layers():
        if kind == "unit":
            x = _tf_unit(x, params[name], args[2])
        elif kind == "pool":
            x = _tf_pool(x, *args)
        else:
            p = {branch: params[f"{name}.{branch}"] for branch in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")}
            x = tf.concat(
                [
                    _tf_unit(x, p["b0"]),
                    _tf_unit(_tf_unit(x, p["b1a"]), p["b1b"]),
                    _tf_unit(_tf_unit(x, p["b2a"]), p["b2b"]),
                    _tf_unit(_tf_pool(x, (3, 3, 3), (1, 1, 1)), p["b3b"]),
                ],
                axis=-1,
            )
    pooled = tf.nn.avg_pool3d(x, (1, 2, 7, 7, 1), (1, 1, 1, 1, 1), "VALID")
    logits = tf.nn.conv3d(pooled, params["logits"]["w"], (1, 1, 1, 1, 1), "VALID") + params["logits"]["b"]
    return tf.reduce_mean(pooled, axis=(2, 3)).numpy(), tf.reduce_mean(logits, axis=(2, 3)).numpy()


# ------------------------------------------------------------------------------------------------- parameters


def random_params(rng, num_classes=400, shapes=None):
    """Random parameters of the real shapes: He-scaled kernels and batch norms that do something, so activations
    stay of order 1 through the 57 units."""
    params = {}
    for name, (kernel, cin, out) in (shapes or unit_shapes()).items():
        fan_in = int(np.prod(kernel)) * cin
        params[name] = {
            "w": rng.normal(0, np.sqrt(2.0 / fan_in), (*kernel, cin, out)).astype(np.float32),
            "gamma": rng.uniform(0.7, 1.3, out).astype(np.float32),
            "beta": rng.normal(0, 0.1, out).astype(np.float32),
            "mean": rng.normal(0, 0.1, out).astype(np.float32),
            "var": rng.uniform(0.6, 1.4, out).astype(np.float32),
        }
    params["logits"] = {
        "w": rng.normal(0, 0.03, (1, 1, 1, 1024, num_classes)).astype(np.float32),
        "b": rng.normal(0, 0.1, num_classes).astype(np.float32),
    }
    return params


def set_unit(unit, p):
    """Copies reference parameters into a Keras Unit3D (through its attributes, not the loaders)."""
    unit.kernel.assign(p["w"])
    if "b" in p:
        unit.bias.assign(p["b"])
    if "gamma" in p:
        norm = unit.batch_norm
        for variable, key in ((norm.gamma, "gamma"), (norm.beta, "beta"), (norm.moving_mean, "mean")):
            variable.assign(p[key])
        norm.moving_variance.assign(p["var"])


def set_network(model, params):
    for name, p in params.items():
        if "." in name:
            module, branch = name.split(".")
            set_unit(getattr(getattr(model, module), branch), p)
        else:
            set_unit(getattr(model, name), p)
