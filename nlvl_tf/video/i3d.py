"""Inception-v1 I3D (Carreira & Zisserman, CVPR 2017), RGB stream, as Keras 3 layers (docs/video.md).

Channels last: inputs are [B, T, H, W, 3] in [-1, 1]. Every convolution and max-pool pads by TensorFlow's 'SAME' rule
(total padding max(k - s, 0) when the size is a multiple of the stride, else max(k - size % s, 0); the smaller half in
front), as DeepMind's network does; the PyTorch port reproduces that rule by hand, so both weight releases run
unchanged here (`weights.py`).

At inference each batch norm is folded into its convolution (kernel * gamma / sqrt(var + eps), one bias), so a unit
is one convolution + bias + ReLU that TensorFlow's graph optimizer fuses into a single oneDNN kernel; training uses
Keras' BatchNormalization on the same variables.
"""

import dataclasses
import math

import keras
import tensorflow as tf

# The stem: (endpoint, output channels, kernel, strides) of each unit; max-pools have no channels (None).
STEM = (
    ("Conv3d_1a_7x7", 64, (7, 7, 7), (2, 2, 2)),
    ("MaxPool3d_2a_3x3", None, (1, 3, 3), (1, 2, 2)),
    ("Conv3d_2b_1x1", 64, (1, 1, 1), (1, 1, 1)),
    ("Conv3d_2c_3x3", 192, (3, 3, 3), (1, 1, 1)),
    ("MaxPool3d_3a_3x3", None, (1, 3, 3), (1, 2, 2)),
)
# Inception modules (branch widths b0, b1a, b1b, b2a, b2b, b3b) and the max-pools between them, in network order.
BODY = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)
BRANCHES = ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")
FEATURE_POOL = (2, 7, 7)  # the feature head's VALID average pool, stride 1
FEATURE_DIM = 1024
BATCH_NORM_EPSILON = 1e-3
# Time strides before the feature pool: Conv3d_1a (2), MaxPool3d_4a (2), MaxPool3d_5a (2).
_TIME_STRIDES = (2, 2, 2)


def feature_rows(num_frames):
    """Feature vectors the network gives for a window of `num_frames` frames: ceil(ceil(ceil(T / 2) / 2) / 2) - 1,
    e.g. 24 -> 2, 16 -> 1, 9 -> 1; 0 below MIN_FRAMES."""
    length = num_frames
    for stride in _TIME_STRIDES:
        length = math.ceil(length / stride)
    return max(length - FEATURE_POOL[0] + 1, 0)


# The fewest frames that give one feature vector (the network's temporal minimum): 9.
MIN_FRAMES = next(frames for frames in range(1, 64) if feature_rows(frames) >= 1)
# The smallest frame side that gives a feature: the spatial strides multiply to 32 and the pool needs 7 positions.
MIN_SIDE = 32 * (FEATURE_POOL[1] - 1) + 1


@dataclasses.dataclass(frozen=True)
class UnitSpec:
    """One unit of the network: its name in the PyTorch port ("Mixed_4b.b1b"), kernel shape [t, h, w, in, out], and
    whether it has a batch norm (all but the classifier) or a bias (the classifier)."""

    name: str
    kernel_shape: tuple
    batch_norm: bool = True
    bias: bool = False


def unit_specs(num_classes=400):
    """Every unit of the network in order, the classifier last (derived from STEM and BODY, no model built)."""
    specs, channels = [], 3
    for name, filters, kernel, _ in STEM:
        if filters is not None:
            specs.append(UnitSpec(name, (*kernel, channels, filters)))
            channels = filters
    for name, widths in BODY:
        if name.startswith("Mixed"):
            b0, b1a, b1b, b2a, b2b, b3b = widths
            for branch, size, cin, cout in zip(
                BRANCHES, (1, 1, 3, 1, 3, 1), (channels, channels, b1a, channels, b2a, channels), widths
            ):
                specs.append(UnitSpec(f"{name}.{branch}", (size, size, size, cin, cout)))
            channels = b0 + b1b + b2b + b3b
    specs.append(UnitSpec("logits", (1, 1, 1, channels, num_classes), batch_norm=False, bias=True))
    return specs


def _triple(name, value):
    values = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(values) != 3 or not all(isinstance(v, int) and v > 0 for v in values):
        raise ValueError(f"{name} must be a positive int or three positive ints, got {value!r}")
    return values


@keras.saving.register_keras_serializable(package="nlvl_tf")
class Unit3D(keras.layers.Layer):
    """I3D's convolution unit: Conv3D (TensorFlow 'SAME' padding) -> batch norm (eps 1e-3) -> ReLU.

    Args:
        filters: output channels.
        kernel_size: int or (t, h, w).
        strides: int or (t, h, w).
        use_batch_norm: False for the classifier (then `use_bias` is usually True).
        use_bias: a bias after the convolution (the classifier's).
        activation: "relu" or None.
        kernel_initializer: for the convolution kernel [t, h, w, in, out].

    Call arguments:
        inputs: [B, T, H, W, C].
        training: batch statistics (True) or the moving ones folded into the convolution (False / None).

    Returns:
        [B, ceil(T / st), ceil(H / sh), ceil(W / sw), filters].

    Example:
    >>> unit = Unit3D(64, kernel_size=7, strides=2)
    >>> unit(tf.zeros([1, 16, 64, 64, 3])).shape
    TensorShape([1, 8, 32, 32, 64])
    """

    def __init__(
        self,
        filters,
        kernel_size=1,
        strides=1,
        use_batch_norm=True,
        use_bias=False,
        activation="relu",
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        if activation not in ("relu", None):
            raise ValueError(f"activation must be 'relu' or None, got {activation!r}")
        self.filters = filters
        self.kernel_size = _triple("kernel_size", kernel_size)
        self.strides = _triple("strides", strides)
        self.use_batch_norm = bool(use_batch_norm)
        self.use_bias = bool(use_bias)
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, inputs_shape[-1], self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
        if self.use_batch_norm:
            self.batch_norm = keras.layers.BatchNormalization(
                epsilon=BATCH_NORM_EPSILON, momentum=0.99, dtype=self.dtype_policy, name="batch_norm"
            )
            self.batch_norm.build((*inputs_shape[:-1], self.filters))

    def call(self, inputs, training=None):
        kernel = self.kernel
        bias = self.bias
        if self.use_batch_norm and not training:
            kernel, bias = self.folded_kernel_and_bias()
        outputs = tf.nn.conv3d(inputs, tf.cast(kernel, inputs.dtype), (1, *self.strides, 1), "SAME")
        if bias is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(bias, outputs.dtype))
        if self.use_batch_norm and training:
            outputs = self.batch_norm(outputs, training=training)
        return tf.nn.relu(outputs) if self.activation == "relu" else outputs

    def folded_kernel_and_bias(self):
        """The inference batch norm folded into the convolution: (kernel * scale, beta - mean * scale [+ bias])."""
        norm = self.batch_norm
        scale = tf.cast(norm.gamma, tf.float32) * tf.math.rsqrt(
            tf.cast(norm.moving_variance, tf.float32) + BATCH_NORM_EPSILON
        )
        bias = tf.cast(norm.beta, tf.float32) - tf.cast(norm.moving_mean, tf.float32) * scale
        if self.bias is not None:
            bias += tf.cast(self.bias, tf.float32) * scale
        return tf.cast(self.kernel, tf.float32) * scale, bias

    def compute_output_shape(self, inputs_shape):
        spatial = [None if size is None else -(-size // s) for size, s in zip(inputs_shape[1:4], self.strides)]
        return (inputs_shape[0], *spatial, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "use_batch_norm": self.use_batch_norm,
            "use_bias": self.use_bias,
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="nlvl_tf")
class InceptionModule(keras.layers.Layer):
    """I3D's Inception module: four branches concatenated on channels.

    Branch 0: 1x1x1 unit (b0). Branch 1: 1x1x1 (b1a) -> 3x3x3 (b1b). Branch 2: 1x1x1 (b2a) -> 3x3x3 (b2b).
    Branch 3: 3x3x3 max-pool, stride 1, 'SAME' -> 1x1x1 (b3b).

    Args:
        branch_filters: the six widths (b0, b1a, b1b, b2a, b2b, b3b).
        kernel_initializer: of the units.

    Call arguments:
        inputs: [B, T, H, W, C]; training: see `Unit3D`.

    Returns:
        [B, T, H, W, b0 + b1b + b2b + b3b].

    Example:
    >>> module = InceptionModule((64, 96, 128, 16, 32, 32))
    >>> module(tf.zeros([1, 4, 28, 28, 192])).shape
    TensorShape([1, 4, 28, 28, 256])
    """

    def __init__(self, branch_filters, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        branch_filters = tuple(branch_filters)
        if len(branch_filters) != 6 or not all(isinstance(f, int) and f > 0 for f in branch_filters):
            raise ValueError(
                f"branch_filters must be six positive ints (b0, b1a, b1b, b2a, b2b, b3b), got {branch_filters}"
            )
        self.branch_filters = branch_filters
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        b0, b1a, b1b, b2a, b2b, b3b = self.branch_filters
        common = {"kernel_initializer": self.kernel_initializer, "dtype": self.dtype_policy}
        self.b0 = Unit3D(b0, 1, name="b0", **common)
        self.b1a = Unit3D(b1a, 1, name="b1a", **common)
        self.b1b = Unit3D(b1b, 3, name="b1b", **common)
        self.b2a = Unit3D(b2a, 1, name="b2a", **common)
        self.b2b = Unit3D(b2b, 3, name="b2b", **common)
        self.b3a = keras.layers.MaxPooling3D(3, strides=1, padding="same", dtype=self.dtype_policy, name="b3a")
        self.b3b = Unit3D(b3b, 1, name="b3b", **common)
        for unit in (self.b0, self.b1a, self.b2a, self.b3b):
            unit.build(inputs_shape)
        self.b1b.build((*inputs_shape[:-1], b1a))
        self.b2b.build((*inputs_shape[:-1], b2a))

    def call(self, inputs, training=None):
        branches = (
            self.b0(inputs, training=training),
            self.b1b(self.b1a(inputs, training=training), training=training),
            self.b2b(self.b2a(inputs, training=training), training=training),
            self.b3b(self.b3a(inputs), training=training),
        )
        return tf.concat(branches, axis=-1)

    def compute_output_shape(self, inputs_shape):
        b0, _, b1b, _, b2b, b3b = self.branch_filters
        return (*inputs_shape[:-1], b0 + b1b + b2b + b3b)

    @property
    def units(self):
        """The branch units by their name in the PyTorch port (b0, b1a, b1b, b2a, b2b, b3b)."""
        return {name: getattr(self, name) for name in BRANCHES}

    def get_config(self):
        return {
            **super().get_config(),
            "branch_filters": self.branch_filters,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="nlvl_tf")
class InceptionI3D(keras.Model):
    """Inception-v1 I3D, RGB stream, up to the feature head and the classifier.

    The feature head is the [2, 7, 7] average pool (stride 1, VALID) over Mixed_5c: a 224 x 224 input gives one
    spatial position, and larger inputs are averaged over the positions it leaves. The classifier (dropout, then a
    1x1x1 convolution with bias) runs on the pooled maps, one prediction per feature row; DeepMind's clip-level
    logits are their mean over time.

    Args:
        num_classes: classifier outputs (400 for Kinetics, 157 for Charades).
        dropout: rate before the classifier (training only).
        kernel_initializer: of every unit but the classifier ("zeros" when weights are loaded right after).

    Call arguments:
        inputs: [B, T, H, W, 3] in [-1, 1], T >= MIN_FRAMES (9), H and W >= MIN_SIDE (193).
        training: see `Unit3D`.

    Returns:
        {"feature": [B, T', 1024], "logits": [B, T', num_classes]} with T' = feature_rows(T).

    Example:
    >>> model = InceptionI3D(num_classes=400)
    >>> model(tf.zeros([1, 24, 224, 224, 3]))["feature"].shape
    TensorShape([1, 2, 1024])
    """

    def __init__(self, num_classes=400, dropout=0.5, kernel_initializer="he_normal", **kwargs):
        kwargs.setdefault("name", "inception_i3d")
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes = num_classes
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        policy = self.dtype_policy
        channels = inputs_shape[-1]
        for name, filters, kernel, strides in STEM:
            if filters is None:
                layer = keras.layers.MaxPooling3D(kernel, strides=strides, padding="same", dtype=policy, name=name)
            else:
                layer = Unit3D(
                    filters, kernel, strides, kernel_initializer=self.kernel_initializer, dtype=policy, name=name
                )
                layer.build((None, None, None, None, channels))
                channels = filters
            setattr(self, name, layer)
        for name, spec in BODY:
            if name.startswith("MaxPool"):
                kernel, strides = spec
                layer = keras.layers.MaxPooling3D(kernel, strides=strides, padding="same", dtype=policy, name=name)
            else:
                layer = InceptionModule(spec, kernel_initializer=self.kernel_initializer, dtype=policy, name=name)
                layer.build((None, None, None, None, channels))
                channels = layer.compute_output_shape((None, channels))[-1]
            setattr(self, name, layer)
        self.logits_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="dropout")
        self.logits = Unit3D(
            self.num_classes,
            1,
            use_batch_norm=False,
            use_bias=True,
            activation=None,
            kernel_initializer="glorot_uniform",
            dtype=policy,
            name="logits",
        )
        self.logits.build((None, None, None, None, channels))
        self.built = True

    def unit(self, name):
        """The Unit3D called `name` in the PyTorch port ("Conv3d_1a_7x7", "Mixed_4b.b1b", "logits")."""
        module, _, branch = name.partition(".")
        layer = getattr(self, module)
        return getattr(layer, branch) if branch else layer

    @property
    def endpoints(self):
        """The network's layers in order, by endpoint name (units, pools and Inception modules)."""
        names = [name for name, *_ in STEM] + [name for name, _ in BODY]
        return {name: getattr(self, name) for name in names}

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.endpoints.values():
            x = layer(x) if isinstance(layer, keras.layers.MaxPooling3D) else layer(x, training=training)
        pooled = self.feature_pool(x)
        logits = self.logits(self.logits_dropout(pooled, training=training), training=training)
        return {
            "feature": tf.reduce_mean(pooled, axis=(2, 3)),
            "logits": tf.reduce_mean(logits, axis=(2, 3)),
        }

    @staticmethod
    def feature_pool(mixed_5c):
        """The [2, 7, 7] VALID average pool over Mixed_5c, with a clear error when the input was too small for it."""
        shape = tf.shape(mixed_5c)
        check = tf.debugging.assert_greater_equal(
            shape[1:4],
            tf.constant(FEATURE_POOL),
            message=f"I3D needs at least {MIN_FRAMES} frames of at least {MIN_SIDE} x {MIN_SIDE} pixels",
        )
        with tf.control_dependencies([check]):
            return tf.nn.avg_pool3d(mixed_5c, (1, *FEATURE_POOL, 1), (1, 1, 1, 1, 1), "VALID")

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def build(num_classes=400, dtype=None, kernel_initializer="he_normal"):
    """A built InceptionI3D: random weights (He-scaled, so that features are of order 1 in tests), or zeros for a
    loader to fill."""
    model = InceptionI3D(num_classes=num_classes, kernel_initializer=kernel_initializer, dtype=dtype)
    model.build((None, None, None, None, 3))
    return model
