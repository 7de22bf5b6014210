"""A preset's resize, centre crop and pixel scaling as TensorFlow ops, on uint8 frames.

The same functions run in the Python extraction and inside the extractor SavedModel, so both give the same network
input. Frames stay uint8 until the network: the resize rounds back to 8 bits, as the authors' OpenCV resize of 8-bit
images does, and the crop is taken before the conversion to [-1, 1] (the two commute).
"""

import tensorflow as tf


def resized_size(height, width, preset):
    """(new height, new width, scale) of the preset's resize for an [height, width] frame (int32 tensors, float32
    scale); scale 1 and the same size when the preset leaves the frame alone.

    The size is round(side * scale), half to even (OpenCV's rounding of `fx`-scaled sizes: 320 x 180 -> 402 x 226).
    """
    height, width = tf.convert_to_tensor(height), tf.convert_to_tensor(width)
    short = tf.cast(tf.minimum(height, width), tf.float64)
    scale = tf.cast(preset.short_side, tf.float64) / short
    if preset.resize == "upscale_below":
        scale = tf.where(short < preset.short_side, scale, tf.ones_like(scale))
    new_height = tf.cast(tf.round(tf.cast(height, tf.float64) * scale), tf.int32)
    new_width = tf.cast(tf.round(tf.cast(width, tf.float64) * scale), tf.int32)
    return new_height, new_width, tf.cast(scale, tf.float32)


def resize(frames, preset):
    """Frames uint8 [N, H, W, 3] -> uint8 [N, H', W', 3] by the preset's rule.

    Bilinear with half-pixel centres and OpenCV's coordinate map for a scale factor f (a destination pixel x samples
    the source at (x + 0.5) / f - 0.5, edges clamped), rounded half up to 8 bits. OpenCV computes the same weights in
    11-bit fixed point, so its pixels can differ from these by one level.
    """
    shape = tf.shape(frames)
    new_height, new_width, scale = resized_size(shape[1], shape[2], preset)

    def scaled():
        images = tf.raw_ops.ScaleAndTranslate(
            images=frames,
            size=tf.stack([new_height, new_width]),
            scale=tf.stack([scale, scale]),
            translation=tf.zeros([2]),
            kernel_type="triangle",
            antialias=False,
        )
        return tf.cast(tf.clip_by_value(tf.floor(images + 0.5), 0.0, 255.0), tf.uint8)

    same = tf.logical_and(tf.equal(new_height, shape[1]), tf.equal(new_width, shape[2]))
    return tf.cond(same, lambda: frames, scaled)


def centre_crop(frames, size):
    """[N, H, W, C] -> [N, size, size, C], offsets round((H - size) / 2) and round((W - size) / 2), half to even
    (numpy's rounding, as in the authors' code). Frames smaller than the crop are an error."""
    shape = tf.shape(frames)
    check = tf.debugging.assert_greater_equal(
        tf.minimum(shape[1], shape[2]), size, message=f"frames are smaller than the {size} x {size} crop"
    )
    with tf.control_dependencies([check]):
        top = tf.cast(tf.round(tf.cast(shape[1] - size, tf.float64) / 2), tf.int32)
        left = tf.cast(tf.round(tf.cast(shape[2] - size, tf.float64) / 2), tf.int32)
    return tf.ensure_shape(frames[:, top : top + size, left : left + size], [None, size, size, None])


def preprocess(frames, preset):
    """Decoded frames uint8 [N, H, W, 3] -> the preset's crops, uint8 [N, crop, crop, 3]."""
    return centre_crop(resize(frames, preset), preset.crop_size)


def to_network_input(frames, dtype=tf.float32):
    """uint8 pixels -> [-1, 1]: x / 255 * 2 - 1."""
    return tf.cast(tf.cast(frames, tf.float32) / 255.0 * 2.0 - 1.0, dtype)
