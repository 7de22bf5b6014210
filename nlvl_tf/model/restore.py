"""A trained model read back from a training workdir (for evaluation, figures and export), including the checkpoints
of nlvl-tf 0.1, whose layers named their sub-layers differently."""

import os
import re

import keras
import tensorflow as tf

from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import text
from nlvl_tf.model import vslnet

# Today's checkpoint keys -> those of 0.1, where the encoder held conv_norm_i / depthwise_conv_i / pointwise_conv_i
# attributes instead of ConvBlocks, the character CNN char_conv_i attributes, and the span heads keras.Sequential
# models (their layers numbered from 1).
_LEGACY_KEY_REWRITES = (
    (re.compile(r"/conv_blocks/(\d+)/norm/"), lambda m: f"/conv_norm_{m.group(1)}/"),
    (re.compile(r"/conv_blocks/(\d+)/depthwise/"), lambda m: f"/depthwise_conv_{m.group(1)}/"),
    (re.compile(r"/conv_blocks/(\d+)/pointwise/"), lambda m: f"/pointwise_conv_{m.group(1)}/"),
    (re.compile(r"/char_cnn/convolutions/(\d+)/"), lambda m: f"/char_cnn/char_conv_{m.group(1)}/"),
    (
        re.compile(r"/(start|end)_head/(\d+)/"),
        lambda m: f"/{m.group(1)}_head/_functional/_operations/{int(m.group(2)) + 1}/",
    ),
)
_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def load_trained_model(workdir, checkpoint="best"):
    """(config, vocabulary, model) of a workdir with the weights of its best (or latest) checkpoint."""
    config = workdir_lib.load_config(workdir)
    vocabulary = text.Vocabulary.load(os.path.join(workdir, workdir_lib.VOCABULARY_DIR))
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    directory = os.path.join(workdir, workdir_lib.BEST_DIR if checkpoint == "best" else workdir_lib.CHECKPOINTS_DIR)
    found = workdir_lib.checkpoints_newest_first(directory)
    if not found:
        raise FileNotFoundError(f"no {checkpoint} checkpoint in {directory}")
    if is_legacy_checkpoint(found[0]):
        restore_legacy(model, found[0])
    else:
        workdir_lib.restore(tf.train.Checkpoint(model=model), found[0], partial=True)
    return config, vocabulary, model


def variable_keys(root, name="model"):
    """{checkpoint key: variable} of every variable `tf.train.Checkpoint(<name>=root)` saves."""
    view = tf.train.TrackableView(root)
    found, seen = {}, set()

    def walk(node, path):
        for child_name, child in view.children(node).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = f"{path}/{child_name}"
            if isinstance(child, (tf.Variable, keras.Variable)):
                found[child_path + _VALUE_SUFFIX] = child
            else:
                walk(child, child_path)

    walk(root, name)
    return found


def legacy_key(key):
    """The 0.1 checkpoint key of today's `key`."""
    for pattern, rewrite in _LEGACY_KEY_REWRITES:
        key = pattern.sub(rewrite, key)
    return key


def is_legacy_checkpoint(path):
    keys = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    return any("/conv_norm_0/" in key or "/_functional/_operations/" in key for key in keys)


def restore_legacy(model, path):
    """Loads a 0.1 checkpoint into today's model, every variable by its rewritten key.

    Raises:
        ValueError naming the checkpoint and the first key that is missing or has another shape.
    """
    workdir_lib.check_checkpoint(path)
    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    for key, variable in variable_keys(model).items():
        old = legacy_key(key)
        if old not in shapes or tuple(shapes[old]) != tuple(variable.shape):
            raise ValueError(
                f"checkpoint {path} does not fit this model: {old} is "
                f"{'missing' if old not in shapes else f'{shapes[old]}, expected {list(variable.shape)}'}"
            )
        variable.assign(reader.get_tensor(old))
