"""The layout of a training workdir and reading a trained model back from it (evaluation, export)."""

import json
import os

import ml_collections
import tensorflow as tf

from nlvl_tf import models
from nlvl_tf import text

CONFIG_FILE = "config.json"
VOCABULARY_DIR = "vocabulary"
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
EVAL_DIR = "eval"


def load_config(workdir):
    """The resolved config a training run saved in `workdir`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir!r} is not a training workdir (train.py writes it)")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    for key in ("char_kernel_widths", "char_filters", "clip_lengths"):
        values[key] = tuple(values[key])
    return ml_collections.ConfigDict(values)


def load_trained_model(workdir, checkpoint="best"):
    """(config, vocabulary, model) of a workdir with the weights of its best (or latest) checkpoint."""
    config = load_config(workdir)
    vocabulary = text.Vocabulary.load(os.path.join(workdir, VOCABULARY_DIR))
    model = models.build_model(config, len(vocabulary.words), vocabulary.num_chars, vocabulary.vectors)
    directory = os.path.join(workdir, BEST_DIR if checkpoint == "best" else CHECKPOINTS_DIR)
    path = tf.train.latest_checkpoint(directory)
    if path is None:
        raise FileNotFoundError(f"no {checkpoint} checkpoint in {directory}")
    tf.train.Checkpoint(model=model).restore(path).expect_partial().assert_existing_objects_matched()
    return config, vocabulary, model
