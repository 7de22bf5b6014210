"""A trained model read back from a training workdir (for evaluation, figures and export)."""

import os

import tensorflow as tf

from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import text
from nlvl_tf.model import vslnet


def load_trained_model(workdir, checkpoint="best"):
    """(config, vocabulary, model) of a workdir with the weights of its best (or latest) checkpoint."""
    config = workdir_lib.load_config(workdir)
    vocabulary = text.Vocabulary.load(os.path.join(workdir, workdir_lib.VOCABULARY_DIR))
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    directory = os.path.join(workdir, workdir_lib.BEST_DIR if checkpoint == "best" else workdir_lib.CHECKPOINTS_DIR)
    found = workdir_lib.checkpoints_newest_first(directory)
    if not found:
        raise FileNotFoundError(f"no {checkpoint} checkpoint in {directory}")
    workdir_lib.restore(tf.train.Checkpoint(model=model), found[0], partial=True)
    return config, vocabulary, model
