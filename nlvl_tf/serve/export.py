"""SavedModel export with raw-text serving signatures (`serve.localizer.Localizer` is the Python API over one).

The export holds everything between a client's inputs and ranked moments in seconds: the training tokenizer and
vocabulary (`text.QueryEncoder`, its word lists shipped as assets), the model with its embedding table, resampling to
n (`features.resample`), decoding (`decoding.ranked_spans`) and index -> seconds (`labels.index_to_time`). A client
needs TensorFlow only.

Signatures:
    serving_default(video_features float32 [B, T, D], video_length int32 [B], duration float32 [B], query string [B])
        -> start_time, end_time, score float32 [B, K], ranked by score.
    details(the same inputs) -> serving_default's outputs and, per position of the resampled video (n of them, the
        first `length` valid): start_prob, end_prob float32 [B, n] (the span predictor's probabilities), highlight
        float32 [B, n] (VSLNet, VSLNet-L: query-guided highlighting scores), length int32 [B]. VSLNet-L's curves are
        those of the scale its ranking used (the most probable best span, Pm); it adds scale, clip_length int32 [B]
        and clip_score float32 [B, n] (the nil prediction score of the clip holding each position). Position i of a
        video covers [i, i + 1) * duration / length seconds.
    tokenize(query string [B]) -> word_ids int32 [B, M], char_ids int32 [B, M, W] (the training pipeline's ids).
    metadata() -> metadata: a JSON string (model family, n, feature_dim, vocabulary size, tokenizer version, top_k,
        selection, xla_loop, the training config).

The export loads wherever SavedModels are served: `tf.saved_model.load`, `saved_model_cli run`, and the TF1 session
loader that tensorflow_model_server uses (see `save` for what that takes with Keras 3). Its LSTM recurrences run as
plain while-loops unless exported with `xla_loop=True` (XLA-compiled: faster, but needs a server that runs XLA).
"""

import contextlib
import json
import os

import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import features as features_lib
from nlvl_tf.data import labels, text
from nlvl_tf.eval import decoding
from nlvl_tf.model import restore
from nlvl_tf.model.layers import compilation

SERVING_OUTPUTS = ("start_time", "end_time", "score")
# The details signature's outputs besides SERVING_OUTPUTS, in every export; "highlight" comes with highlighting
# (VSLNet, VSLNet-L) and VSLNET_L_DETAILS with VSLNet-L.
DETAILS_OUTPUTS = ("start_prob", "end_prob", "length")
VSLNET_L_DETAILS = ("scale", "clip_length", "clip_score")


class ServingModule:
    """The exported computation (see the module docstring for its signatures); `saveable()` is the SavedModel root."""

    def __init__(self, model, encoder, config, top_k, selection, metadata, xla_loop=False):
        self.model = model
        self.encoder = encoder
        self._xla_loop = xla_loop
        self._n = config.data.max_video_len
        self._feature_dim = config.model.video_feature_dim
        self._top_k = top_k
        self._selection = selection
        self._label_method = config.data.label_method
        self._include_last = config.data.resample_include_last
        self._metadata = json.dumps(metadata, sort_keys=True)
        video_inputs = [
            tf.TensorSpec([None, None, self._feature_dim], tf.float32, name="video_features"),
            tf.TensorSpec([None], tf.int32, name="video_length"),
            tf.TensorSpec([None], tf.float32, name="duration"),
            tf.TensorSpec([None], tf.string, name="query"),
        ]
        self.serve = tf.function(self._serve, input_signature=video_inputs)
        self.details = tf.function(self._details, input_signature=video_inputs)
        self.tokenize = tf.function(self._tokenize, input_signature=[tf.TensorSpec([None], tf.string, name="query")])
        self.get_metadata = tf.function(self._get_metadata, input_signature=[])

    def saveable(self):
        """The SavedModel's root object: the functions, the encoder's tables and the model's variables.

        It tracks the tf.Variables behind the Keras variables, not the Keras model. Saving a Keras 3 model as a
        tracked child writes two variables per weight: Keras' `Variable._export_to_saved_model_graph` exports the
        wrapped tf.Variable (whose handle the traced functions read) and then registers a second `tf.Variable` made
        from it as the saved object, which the checkpoint's restore op fills. `tf.saved_model.load` rebinds the
        functions' captures to the restored objects and worked; the TF1 session loader (tensorflow_model_server,
        `saved_model_cli run`) runs the graph as written, so the signatures read handles nothing restored:
        "FailedPreconditionError: Could not find variable". Tracked directly, each weight is one variable.
        """
        root = tf.Module(name="nlvl_localizer")
        root.encoder = self.encoder
        root.model_variables = [variable.value for variable in self.model.variables]
        root.serve, root.details, root.tokenize, root.get_metadata = (
            self.serve,
            self.details,
            self.tokenize,
            self.get_metadata,
        )
        return root

    def signatures(self):
        return {
            "serving_default": self.serve,
            "details": self.details,
            "tokenize": self.tokenize,
            "metadata": self.get_metadata,
        }

    def _serve(self, video_features, video_length, duration, query):
        moments, _, _ = self._localize(video_features, video_length, duration, query)
        return moments

    def _details(self, video_features, video_length, duration, query):
        moments, outputs, length = self._localize(video_features, video_length, duration, query)
        return {**moments, **curves(outputs, length, self.model.hyperparameters.get("clip_lengths")), "length": length}

    def _localize(self, video_features, video_length, duration, query):
        """(ranked moments {start_time, end_time, score}, the model's outputs, valid positions [B] after resampling)."""
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
        with contextlib.nullcontext() if self._xla_loop else compilation.plain_graph():
            outputs = self.model(
                {"video_features": resampled, "video_length": length, "word_ids": word_ids, "char_ids": char_ids},
                training=False,
            )
        start, end, score = decoding.ranked_spans(outputs, length, self._top_k, self._selection)
        start_time, end_time = labels.index_to_time(start, end, duration, length, self._label_method)
        moments = {
            "start_time": tf.cast(start_time, tf.float32),
            "end_time": tf.cast(end_time, tf.float32),
            "score": score,
        }
        return moments, outputs, length

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


def curves(outputs, length, clip_lengths=None):
    """The `details` signature's per-position values (see the module docstring) from the model's outputs."""
    start_probs = tf.nn.softmax(outputs["start_logits"], axis=-1)
    end_probs = tf.nn.softmax(outputs["end_logits"], axis=-1)
    valid = tf.sequence_mask(length, tf.shape(start_probs)[-1])
    found = {"start_prob": start_probs, "end_prob": end_probs}
    if "highlight_logits" in outputs:
        found["highlight"] = tf.sigmoid(outputs["highlight_logits"])
    if clip_lengths is None:
        return {key: tf.where(valid, values, 0.0) for key, values in found.items()}
    scale = decoding.most_probable_scale(start_probs, end_probs, valid[:, tf.newaxis])
    found = {key: tf.gather(values, scale, batch_dims=1) for key, values in found.items()}
    clip_length = tf.gather(tf.constant(clip_lengths, tf.int32), scale)
    clip_of_position = tf.range(tf.shape(start_probs)[-1])[tf.newaxis] // clip_length[:, tf.newaxis]
    nil_scores = tf.sigmoid(tf.gather(outputs["nil_logits"], scale, batch_dims=1))
    found["clip_score"] = tf.gather(nil_scores, clip_of_position, batch_dims=1)
    found = {key: tf.where(valid, values, 0.0) for key, values in found.items()}
    return {**found, "scale": scale, "clip_length": clip_length}


def metadata_of(config, vocabulary, top_k, selection, xla_loop=False):
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
        "xla_loop": bool(xla_loop),
        "max_query_len": config.data.max_query_len,
        "max_word_len": config.data.max_word_len,
        "config": json.loads(config.to_json_best_effort()),
    }


def export(workdir, export_dir, top_k=None, selection=None, checkpoint="best", xla_loop=None):
    """Writes a SavedModel of the workdir's best (or latest) checkpoint to `export_dir`; returns its metadata.

    `top_k`, `selection` and `xla_loop` default to the run's config.export values.
    """
    config, vocabulary, model = restore.load_trained_model(workdir, checkpoint)
    top_k = config.export.top_k if top_k is None else top_k
    selection = selection or config.export.selection
    xla_loop = config.export.xla_loop if xla_loop is None else xla_loop
    if selection not in decoding.SELECTIONS:
        raise errors.InputError(f"selection must be one of {decoding.SELECTIONS}, got {selection!r}")
    n = config.data.max_video_len
    if not 1 <= top_k <= n * (n + 1) // 2:
        raise errors.InputError(f"top_k must be in [1, {n * (n + 1) // 2}], got {top_k}")
    vocabulary_dir = os.path.join(workdir, workdir_lib.VOCABULARY_DIR)
    return save(model, config, vocabulary, vocabulary_dir, export_dir, top_k, selection, xla_loop)


def save(model, config, vocabulary, vocabulary_dir, export_dir, top_k=5, selection="pm", xla_loop=False):
    """Exports an in-memory model (see `export` for a workdir)."""
    encoder = text.QueryEncoder.from_config(vocabulary_dir, config.data)
    metadata = metadata_of(config, vocabulary, top_k, selection, xla_loop)
    module = ServingModule(model, encoder, config, top_k, selection, metadata, xla_loop)
    tf.saved_model.save(module.saveable(), export_dir, signatures=module.signatures())
    return metadata
