"""Small SavedModel exports for the serving tests: random weights, n = 24, 12-d features, a few-word vocabulary."""

import numpy as np

from nlvl_tf.data import text
from nlvl_tf.model import vslnet
from nlvl_tf.serve import export
from tests import test_models

CORPUS = [
    "the person opens the door.",
    "a man throws the ball after he sits down",
    "someone is cooking an egg",
    "a person takes a book from the shelf",
]


def small_model(directory, model_type="vslnet", feature_dim=12):
    """Writes directory/vocabulary; returns (config, vocabulary, vocabulary_dir, model with random weights)."""
    vocabulary = text.build_vocabulary(CORPUS, CORPUS, word2vec_dim=8, min_char_count=1)
    vocabulary_dir = directory / "vocabulary"
    vocabulary.save(vocabulary_dir)
    config = test_models.run_config(model_type, max_query_len=10, max_word_len=8, dropout=0.0)
    config.data.video_feature_dim = config.model.video_feature_dim = feature_dim
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    return config, vocabulary, vocabulary_dir, model


def small_export(directory, model_type="vslnet", top_k=4, feature_dim=12):
    """`small_model` exported to directory/export; returns (config, model, export_dir)."""
    config, vocabulary, vocabulary_dir, model = small_model(directory, model_type, feature_dim)
    export_dir = directory / "export"
    export.save(model, config, vocabulary, str(vocabulary_dir), str(export_dir), top_k=top_k)
    return config, model, export_dir


def video_batch(seed=0, feature_dim=12):
    """Three videos (shorter than, equal to and longer than n = 24 rows), durations and queries."""
    rng = np.random.default_rng(seed)
    lengths = np.array([10, 24, 40], np.int32)
    features = rng.normal(size=(3, 40, feature_dim)).astype(np.float32)
    durations = np.array([5.0, 12.0, 20.5], np.float32)
    queries = np.array([b"the person opens the door.", b"a man sits down", b"cooking an egg"])
    return {"video_features": features, "video_length": lengths, "duration": durations, "query": queries}
