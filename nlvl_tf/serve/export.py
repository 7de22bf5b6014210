"""SavedModel export with raw-text serving signatures (`serve.localizer.Localizer` is the Python API over one).

The export holds everything between a client's inputs and ranked moments in seconds: the training tokenizer and
vocabulary (`text.QueryEncoder`, its word lists shipped as assets), the model with its embedding table, resampling to
n (`features.resample`), decoding (`decoding.ranked_spans`) and index -> seconds (`labels.index_to_time`). A client
needs TensorFlow only.

Signatures:
    serving_default(video_features float32 [B, T, D], video_length int32 [B], duration float32 [B], query string [B])
        -> start_time, end_time, score float32 [B, K], ranked by score.
    tokenize(query string [B]) -> word_ids int32 [B, M], char_ids int32 [B, M, W] (the training pipeline's ids).
    metadata() -> metadata: a JSON string (model family, n, feature_dim, vocabulary size, tokenizer version, top_k,
        selection, the training config).
"""

import json
import os

import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import features as features_lib
from nlvl_tf.data import labels, text
from nlvl_tf.eval import decoding
from nlvl_tf.model import restore

SERVING_OUTPUTS = ("start_time", "end_time", "score")


class ServingModule(tf.Module):
    """The exported graph: see the module docstring for its signatures."""

    def __init__(self, model, encoder, config, top_k, selection, metadata):
        super().__init__(name="nlvl_localizer")
        self.model = model
        self.encoder = encoder
        self._n = config.data.max_video_len
        self._feature_dim = config.model.video_feature_dim
        self._top_k = top_k
        self._selection = selection
        self._label_method = config.data.label_method
        self._include_last = config.data.resample_include_last
        self._metadata = json.dumps(metadata, sort_keys=True)
        dim = self._feature_dim
        self.serve = tf.function(
            self._serve,
            input_signature=[
                tf.TensorSpec([None, None, dim], tf.float32, name="video_features"),
                tf.TensorSpec([None], tf.int32, name="video_length"),
                tf.TensorSpec([None], tf.float32, name="duration"),
                tf.TensorSpec([None], tf.string, name="query"),
            ],
        )
        self.tokenize = tf.function(self._tokenize, input_signature=[tf.TensorSpec([None], tf.string, name="query")])
        self.get_metadata = tf.function(self._get_metadata, input_signature=[])

    def _serve(self, video_features, video_length, duration, query):
        word_ids, char_ids = self.encoder(query)
        valid_rows = tf.sequence_mask(video_length, tf.shape(video_features)[1])[:, :, None]
        not_finite = tf.where(~tf.reduce_all(tf.math.is_finite(video_features) | ~valid_rows, axis=[1, 2]))[:, 0]
        no_words = tf.where(tf.equal(word_ids[:, 0], text.PAD_ID))[:, 0]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(video_features)[2],
                self._feature_dim,
                message=f"video_features must be [B, T, {self._feature_dim}] (the model's feature_dim)",
            ),
            tf.debugging.assert_equal(
                tf.shape(video_length)[0],
                tf.shape(video_features)[0],
                message="video_length must have one entry per video",
            ),
            tf.debugging.assert_equal(
                tf.shape(duration)[0], tf.shape(video_features)[0], message="duration must have one entry per video"
            ),
            tf.debugging.assert_equal(
                tf.shape(query)[0], tf.shape(video_features)[0], message="query must have one entry per video"
            ),
            tf.debugging.assert_positive(video_length, message="video_length must be >= 1"),
            tf.debugging.assert_less_equal(
                video_length, tf.shape(video_features)[1], message="video_length is larger than the feature sequence"
            ),
            tf.debugging.assert_positive(duration, message="duration must be > 0 seconds"),
            tf.debugging.Assert(
                tf.size(not_finite) == 0,
                [
                    "video_features has NaN or Inf in the first video_length rows of the videos at batch indices",
                    not_finite,
                ],
            ),
            tf.debugging.Assert(
                tf.size(no_words) == 0, ["query is empty or blank (no words) at batch indices", no_words]
            ),
        ]
        with tf.control_dependencies(checks):
            resampled, length = features_lib.resample_batch(video_features, video_length, self._n, self._include_last)
            word_ids, char_ids = self._trim_query_padding(word_ids, char_ids)
        outputs = self.model(
            {"video_features": resampled, "video_length": length, "word_ids": word_ids, "char_ids": char_ids},
            training=False,
        )
        start, end, score = decoding.ranked_spans(outputs, length, self._top_k, self._selection)
        start_time, end_time = labels.index_to_time(start, end, duration, length, self._label_method)
        return {
            "start_time": tf.cast(start_time, tf.float32),
            "end_time": tf.cast(end_time, tf.float32),
            "score": score,
        }

    def _trim_query_padding(self, word_ids, char_ids):
        """Cuts the tokenizer's fixed [B, M, W] padding down to the batch's longest query and word (words no shorter
        than the widest character kernel): the model's outputs do not depend on padding, and the query-side work
        shrinks with it (queries of 6-12 words padded to M = 20 spent 40% of it on padding)."""
        longest_query = tf.reduce_max(tf.reduce_sum(tf.cast(word_ids != text.PAD_ID, tf.int32), axis=1))
        longest_word = tf.reduce_max(tf.reduce_sum(tf.cast(char_ids != text.PAD_ID, tf.int32), axis=2))
        widest_kernel = max(self.model.hyperparameters["char_kernel_widths"])
        word_length = tf.minimum(tf.maximum(longest_word, widest_kernel), tf.shape(char_ids)[2])
        return word_ids[:, :longest_query], char_ids[:, :longest_query, :word_length]

    def _tokenize(self, query):
        word_ids, char_ids = self.encoder(query)
        return {"word_ids": word_ids, "char_ids": char_ids}

    def _get_metadata(self):
        return {"metadata": tf.constant(self._metadata)}


def metadata_of(config, vocabulary, top_k, selection):
    """What the export records about itself (readable through the `metadata` signature)."""
    return {
        "model": config.model.name,
        "max_video_len": config.data.max_video_len,
        "feature_dim": config.model.video_feature_dim,
        "vocabulary_size": vocabulary.num_words,
        "num_chars": vocabulary.num_chars,
        "tokenizer_version": text.TOKENIZER_VERSION,
        "top_k": top_k,
        "selection": selection,
        "max_query_len": config.data.max_query_len,
        "max_word_len": config.data.max_word_len,
        "config": json.loads(config.to_json_best_effort()),
    }


def export(workdir, export_dir, top_k=None, selection=None, checkpoint="best"):
    """Writes a SavedModel of the workdir's best (or latest) checkpoint to `export_dir`; returns its metadata.

    `top_k` and `selection` default to the run's config.export values.
    """
    config, vocabulary, model = restore.load_trained_model(workdir, checkpoint)
    top_k = config.export.top_k if top_k is None else top_k
    selection = selection or config.export.selection
    if selection not in decoding.SELECTIONS:
        raise errors.InputError(f"selection must be one of {decoding.SELECTIONS}, got {selection!r}")
    n = config.data.max_video_len
    if not 1 <= top_k <= n * (n + 1) // 2:
        raise errors.InputError(f"top_k must be in [1, {n * (n + 1) // 2}], got {top_k}")
    return save(
        model, config, vocabulary, os.path.join(workdir, workdir_lib.VOCABULARY_DIR), export_dir, top_k, selection
    )


def save(model, config, vocabulary, vocabulary_dir, export_dir, top_k=5, selection="pm"):
    """Exports an in-memory model (see `export` for a workdir)."""
    encoder = text.QueryEncoder.from_config(vocabulary_dir, config.data)
    metadata = metadata_of(config, vocabulary, top_k, selection)
    module = ServingModule(model, encoder, config, top_k, selection, metadata)
    tf.saved_model.save(
        module,
        export_dir,
        signatures={"serving_default": module.serve, "tokenize": module.tokenize, "metadata": module.get_metadata},
    )
    return metadata
