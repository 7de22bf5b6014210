"""VSLBase, VSLNet and VSLNet-L (paper Sec. 3) as Keras models built from one config.

All three share the stem: word + character embeddings projected to d, the video projection, ONE feature encoder for
video and query, and context-query attention. VSLBase feeds the attended video to the conditioned span predictor;
VSLNet first applies query-guided highlighting; VSLNet-L splits the video into clips at several scales, attends and
scores each clip with the nil prediction module, re-weights, concatenates, then highlights and predicts per scale.

Models take the batch dict of docs/internals.md and return a dict of float32 logits; `compute_losses` turns a batch
and those outputs into the training objective.
"""

import math

import keras
import tensorflow as tf

from nlvl_tf.data import labels, text
from nlvl_tf.model import losses
from nlvl_tf.model.layers import attention, embedding, encoder, highlight, nil, predictor
from nlvl_tf.model.layers import dropout as dropout_lib

MODEL_TYPES = ("vslbase", "vslnet", "vslnet_l")
ENCODERS = ("cmf", "bilstm")
ATTENTIONS = ("cqa", "cat")


@keras.saving.register_keras_serializable(package="nlvl_tf")
class VSLNet(keras.Model):
    """VSLNet (paper Sec. 3.2-3.5); with `use_highlighting=False` it is VSLBase (see `VSLBase`).

    Args:
        vocabulary_size: size of the word id space, PAD and UNK included (`text.Vocabulary.num_words`).
        num_chars: character vocabulary size including PAD and UNK.
        video_feature_dim: D of the input features.
        word_vectors: optional [vocabulary_size - 2, word_dim] frozen vectors of word ids 2.. (a weight, not config).
        word_dim, hidden_size, num_heads, kernel_size, num_conv_layers, max_position, dropout: as in the paper (300,
            128, 8, 7, 4, >= the longest video and query, 0.2).
        use_char_cnn: add the authors' character CNN to the word vectors (off = the paper's variant).
        char_dim, char_kernel_widths, char_filters: of the character CNN.
        encoder_type: "cmf" (conv + multi-head attention + feed-forward) or "bilstm" (Table 8 ablation).
        attention_type: "cqa" (context-query attention) or "cat" (Table 8 ablation).
        use_highlighting: query-guided highlighting (VSLNet) or not (VSLBase).
        highlight_projection: project [V^q; h_Q] back to d before scoring (authors) or not (paper).
        predictor_head: "mlp" (authors) or "linear" (paper Eq. 4).
        highlight_lambda: weight of the highlighting loss (authors 5, paper 1).
        positive_weight: weight of positive positions in the highlighting (and nil) BCE.
    """

    def __init__(
        self,
        vocabulary_size,
        num_chars,
        video_feature_dim,
        word_vectors=None,
        word_dim=300,
        hidden_size=128,
        num_heads=8,
        kernel_size=7,
        num_conv_layers=4,
        max_position=128,
        dropout=0.2,
        use_char_cnn=True,
        char_dim=50,
        char_kernel_widths=(1, 2, 3, 4),
        char_filters=(10, 20, 30, 40),
        encoder_type="cmf",
        attention_type="cqa",
        use_highlighting=True,
        highlight_projection=True,
        predictor_head="mlp",
        highlight_lambda=5.0,
        positive_weight=2.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if encoder_type not in ENCODERS:
            raise ValueError(f"encoder_type must be one of {ENCODERS}, got {encoder_type!r}")
        if attention_type not in ATTENTIONS:
            raise ValueError(f"attention_type must be one of {ATTENTIONS}, got {attention_type!r}")
        if int(video_feature_dim) <= 0 or int(hidden_size) <= 0:
            raise ValueError(
                f"video_feature_dim and hidden_size must be positive, got {video_feature_dim}, {hidden_size}"
            )
        self.hyperparameters = dict(
            vocabulary_size=int(vocabulary_size),
            num_chars=int(num_chars),
            video_feature_dim=int(video_feature_dim),
            word_dim=int(word_dim),
            hidden_size=int(hidden_size),
            num_heads=int(num_heads),
            kernel_size=int(kernel_size),
            num_conv_layers=int(num_conv_layers),
            max_position=int(max_position),
            dropout=float(dropout),
            use_char_cnn=bool(use_char_cnn),
            char_dim=int(char_dim),
            char_kernel_widths=tuple(char_kernel_widths),
            char_filters=tuple(char_filters),
            encoder_type=encoder_type,
            attention_type=attention_type,
            use_highlighting=bool(use_highlighting),
            highlight_projection=bool(highlight_projection),
            predictor_head=predictor_head,
            highlight_lambda=float(highlight_lambda),
            positive_weight=float(positive_weight),
        )
        policy = self.dtype_policy
        self.word_embedding = embedding.WordEmbedding(
            vocabulary_size, word_dim, pretrained=word_vectors, dropout=dropout, dtype=policy, name="word_embedding"
        )
        self.char_cnn = (
            embedding.CharacterCNN(
                num_chars, char_dim, char_kernel_widths, char_filters, dropout=dropout, dtype=policy, name="char_cnn"
            )
            if use_char_cnn
            else None
        )
        self.query_projection = keras.layers.Dense(hidden_size, dtype=policy, name="query_projection")
        self.video_dropout = dropout_lib.Dropout(dropout, dtype=policy)
        self.video_projection = keras.layers.Dense(hidden_size, dtype=policy, name="video_projection")
        if encoder_type == "cmf":
            self.feature_encoder = encoder.FeatureEncoder(
                num_heads, kernel_size, num_conv_layers, max_position, dropout, dtype=policy, name="feature_encoder"
            )
        else:
            self.feature_encoder = encoder.BiLSTMEncoder(dtype=policy, name="feature_encoder")
        if attention_type == "cqa":
            self.cross_attention = attention.ContextQueryAttention(
                dropout, dtype=policy, name="context_query_attention"
            )
        else:
            self.cross_attention = attention.ConcatAttention(dtype=policy, name="concat_attention")
        if use_highlighting:
            self.sentence_pooling = attention.AttentionPooling(dtype=policy, name="sentence_pooling")
            self.highlighting = highlight.QueryGuidedHighlighting(
                highlight_projection, dtype=policy, name="highlighting"
            )
        self.span_predictor = predictor.ConditionedSpanPredictor(
            hidden_size, predictor_head, dtype=policy, name="span_predictor"
        )

    def dummy_batch(self):
        """A one-row batch that builds every weight: n = max_position, the longest query the table allows."""
        hp = self.hyperparameters
        return zeros_batch(
            1, hp["max_position"], min(hp["max_position"], 8), max(hp["char_kernel_widths"]), hp["video_feature_dim"]
        )

    @property
    def use_highlighting(self):
        return self.hyperparameters["use_highlighting"]

    def get_config(self):
        return {**super().get_config(), **self.hyperparameters}

    def embed(self, batch, training=None):
        """Projected video [B, n, d], encoded query [B, M, d], and the masks [B, n], [B, M] (shared by all scales)."""
        video_features = batch["video_features"]
        video_mask = tf.sequence_mask(batch["video_length"], tf.shape(video_features)[1])
        word_ids = batch["word_ids"]
        query_mask = word_ids != text.PAD_ID
        words = self.word_embedding(word_ids, training=training)
        if self.char_cnn is not None:
            words = tf.concat([words, self.char_cnn(batch["char_ids"], training=training)], axis=-1)
        query = self.feature_encoder(self.query_projection(words), query_mask, training=training)
        video = self.video_projection(
            self.video_dropout(tf.cast(video_features, self.compute_dtype), training=training)
        )
        return video, video_mask, query, query_mask

    def localize(self, attended, video_mask, sentence, training=None):
        """Highlighting (if any) and span prediction over the whole video: dict of [B, n] float32 logits."""
        outputs = {}
        if self.use_highlighting:
            attended, outputs["highlight_logits"] = self.highlighting(attended, sentence, video_mask)
        outputs["start_logits"], outputs["end_logits"] = self.span_predictor(attended, video_mask)
        return outputs

    def call(self, batch, training=None):
        video, video_mask, query, query_mask = self.embed(batch, training=training)
        video = self.feature_encoder(video, video_mask, training=training)
        similarity = None
        if self.hyperparameters["attention_type"] == "cqa":
            attended, similarity = self.cross_attention(
                video, query, video_mask, query_mask, training=training, return_similarity=True
            )
        else:
            attended = self.cross_attention(video, query, video_mask, query_mask, training=training)
        sentence = self.sentence_pooling(query, query_mask) if self.use_highlighting else None
        outputs = self.localize(attended, video_mask, sentence, training=training)
        if similarity is not None:
            outputs["similarity"] = similarity
        return outputs

    def scale_loss_components(self, batch, start_logits, end_logits, highlight_logits=None, suffix=""):
        """Span and highlighting loss components of one prediction, for `losses.combine`."""
        span = losses.span_cross_entropy(start_logits, end_logits, batch["start_index"], batch["end_index"])
        components = {"span_loss" + suffix: (tf.reduce_sum(span), tf.cast(tf.size(span), tf.float32), 1.0)}
        if highlight_logits is not None:
            mask = tf.sequence_mask(batch["video_length"], tf.shape(highlight_logits)[-1])
            total, count = losses.weighted_binary_cross_entropy(
                highlight_logits, batch["highlight"], mask, self.hyperparameters["positive_weight"]
            )
            components["highlight_loss" + suffix] = (
                tf.reduce_sum(total),
                tf.reduce_sum(count),
                self.hyperparameters["highlight_lambda"],
            )
        return components

    def loss_components(self, batch, outputs):
        """{name: (numerator, denominator, weight)} float32 scalars of the training objective (docs/model.md 3)."""
        return self.scale_loss_components(
            batch, outputs["start_logits"], outputs["end_logits"], outputs.get("highlight_logits")
        )

    def compute_losses(self, batch, outputs):
        """Training objective on one replica: dict of float32 scalars, each term and `loss`, the total."""
        return losses.combine(self.loss_components(batch, outputs))


@keras.saving.register_keras_serializable(package="nlvl_tf")
class VSLBase(VSLNet):
    """VSLBase (paper Sec. 3.2-3.4): VSLNet without query-guided highlighting. Arguments as `VSLNet`."""

    def __init__(self, use_highlighting=False, **kwargs):
        if use_highlighting:
            raise ValueError("VSLBase has no highlighting; use VSLNet")
        super().__init__(use_highlighting=False, **kwargs)


@keras.saving.register_keras_serializable(package="nlvl_tf")
class VSLNetL(VSLNet):
    """VSLNet-L (paper Sec. 3.6): multi-scale split-and-concat with nil prediction, for long videos.

    For each clip length l (scale), the projected video [B, n, d] becomes [B*K, l, d] (K = n / l, one batched pass,
    positions restarting in every clip), is encoded by the shared feature encoder and attended with the (once encoded)
    query, then the nil prediction module encodes each clip with its own encoder and scores it. Scores are
    max-normalised over the valid clips, re-weight the clips, which are concatenated back to n positions; highlighting
    and the span predictor then run over the whole video. The video must be padded to a multiple of every l.

    Args (besides VSLNet's):
        clip_lengths: the scales, e.g. (100, 120, 150, 200) for n = 600 or (60, 75, 100, 150) for n = 300.
        nil_lambda: weight of the nil prediction loss (paper Eq. 16: 1).
        nil_max_position: positional table of the nil module's encoder (default: the longest clip).
    """

    def __init__(self, clip_lengths=(100, 120, 150, 200), nil_lambda=1.0, nil_max_position=None, **kwargs):
        kwargs.setdefault("use_highlighting", True)
        super().__init__(**kwargs)
        clip_lengths = tuple(int(length) for length in clip_lengths)
        if not clip_lengths or min(clip_lengths) <= 0:
            raise ValueError(f"clip_lengths must be a non-empty list of positive lengths, got {clip_lengths}")
        if max(clip_lengths) > self.hyperparameters["max_position"]:
            raise ValueError(
                f"clip length {max(clip_lengths)} exceeds max_position={self.hyperparameters['max_position']}"
            )
        nil_max_position = int(nil_max_position or max(clip_lengths))
        if nil_max_position < max(clip_lengths):
            raise ValueError(
                f"nil_max_position={nil_max_position} is shorter than the longest clip {max(clip_lengths)}"
            )
        self.hyperparameters = dict(
            self.hyperparameters,
            clip_lengths=clip_lengths,
            nil_lambda=float(nil_lambda),
            nil_max_position=nil_max_position,
        )
        hp = self.hyperparameters
        self.nil_prediction = nil.NilPrediction(
            hp["num_heads"],
            hp["kernel_size"],
            hp["num_conv_layers"],
            nil_max_position,
            hp["dropout"],
            dtype=self.dtype_policy,
            name="nil_prediction",
        )

    def dummy_batch(self):
        """A one-row batch that builds every weight: n = the least common multiple of the clip lengths."""
        hp = self.hyperparameters
        return zeros_batch(
            1,
            math.lcm(*hp["clip_lengths"]),
            min(hp["max_position"], 8),
            max(hp["char_kernel_widths"]),
            hp["video_feature_dim"],
        )

    def call(self, batch, training=None):
        video, video_mask, query, query_mask = self.embed(batch, training=training)
        sentence = self.sentence_pooling(query, query_mask) if self.use_highlighting else None
        clip_lengths = self.hyperparameters["clip_lengths"]
        max_clips = video.shape[1] // min(clip_lengths)
        attended, nil_logits, clip_masks = [], [], []
        for clip_length in clip_lengths:
            features, logits, clip_mask = self._split_attend_concat(
                video, video_mask, query, query_mask, clip_length, training=training
            )
            attended.append(features)
            pad = [[0, 0], [0, max_clips - logits.shape[1]]]
            nil_logits.append(tf.pad(logits, pad))
            clip_masks.append(tf.pad(clip_mask, pad))
        # Highlighting and the span predictor share their weights across scales: one pass over the scales stacked
        # on the batch axis instead of one per scale (one 600-step LSTM loop instead of four at n = 600).
        num_scales = len(clip_lengths)
        stacked = self.localize(
            tf.concat(attended, axis=0),
            tf.tile(video_mask, [num_scales, 1]),
            tf.tile(sentence, [num_scales, 1]) if sentence is not None else None,
            training=training,
        )
        outputs = {key: tf.stack(tf.split(value, num_scales, axis=0), axis=1) for key, value in stacked.items()}
        outputs["nil_logits"] = tf.stack(nil_logits, axis=1)
        outputs["clip_mask"] = tf.stack(clip_masks, axis=1)
        return outputs

    def _split_attend_concat(self, video, video_mask, query, query_mask, clip_length, training=None):
        """One scale: returns re-weighted features [B, n, d], nil logits [B, K] and the clip mask [B, K]."""
        padded_length, hidden_size = video.shape[1], video.shape[2]
        if padded_length is None or padded_length % clip_length:
            raise ValueError(
                f"VSLNet-L needs the video padded to a static multiple of every clip length; got "
                f"{padded_length} positions for clip length {clip_length}"
            )
        num_clips = padded_length // clip_length
        clips = tf.reshape(video, [-1, clip_length, hidden_size])
        clips_mask = tf.reshape(video_mask, [-1, clip_length])
        clip_query = tf.repeat(query, num_clips, axis=0)
        clip_query_mask = tf.repeat(query_mask, num_clips, axis=0)
        clips = self.feature_encoder(clips, clips_mask, training=training)
        clips = self.cross_attention(clips, clip_query, clips_mask, clip_query_mask, training=training)
        encoded, nil_logits = self.nil_prediction(clips, clips_mask, training=training)
        nil_logits = tf.reshape(nil_logits, [-1, num_clips])
        clip_mask = labels.clip_mask(tf.reduce_sum(tf.cast(video_mask, tf.int32), axis=1), clip_length, num_clips)
        scores = tf.where(clip_mask, tf.sigmoid(nil_logits), 0.0)
        normalised_scores = scores / (tf.reduce_max(scores, axis=1, keepdims=True) + 1e-12)
        encoded = tf.reshape(encoded, [-1, num_clips, clip_length, hidden_size])
        encoded = encoded * tf.cast(normalised_scores, encoded.dtype)[:, :, tf.newaxis, tf.newaxis]
        return tf.reshape(encoded, [-1, padded_length, hidden_size]), nil_logits, clip_mask

    def loss_components(self, batch, outputs):
        """Per scale: span + lambda_h * highlight + lambda_nil * nil components (paper Eq. 16, docs/model.md 8.2
        item 9); `losses.combine` sums the scales."""
        hp = self.hyperparameters
        components = {}
        for index, clip_length in enumerate(hp["clip_lengths"]):
            suffix = f"/clip_{clip_length}"
            components.update(
                self.scale_loss_components(
                    batch,
                    outputs["start_logits"][:, index],
                    outputs["end_logits"][:, index],
                    outputs["highlight_logits"][:, index] if self.use_highlighting else None,
                    suffix,
                )
            )
            num_clips = outputs["start_logits"].shape[-1] // clip_length
            clip_mask = outputs["clip_mask"][:, index, :num_clips]
            nil_targets = labels.nil_labels(batch["start_index"], batch["end_index"], clip_length, num_clips)
            total, count = losses.weighted_binary_cross_entropy(
                outputs["nil_logits"][:, index, :num_clips], nil_targets, clip_mask, hp["positive_weight"]
            )
            components["nil_loss" + suffix] = (tf.reduce_sum(total), tf.reduce_sum(count), hp["nil_lambda"])
        return components


MODELS = {"vslbase": VSLBase, "vslnet": VSLNet, "vslnet_l": VSLNetL}


def build_model(model_config, vocabulary_size, num_chars, word_vectors=None):
    """Builds the model that `model_config` (config.model) names, with all its variables created (as an
    XLA-compiled step needs before its first trace).

    Args:
        model_config: config.model: `name` picks the class (`MODELS`), every other key is a constructor argument;
            `video_feature_dim` and `max_position` must be resolved (`configs.resolve`).
        vocabulary_size, num_chars: id space sizes of the vocabulary (PAD and UNK included).
        word_vectors: [vocabulary_size - 2, word_dim] or None.
    """
    arguments = dict(model_config)
    name = arguments.pop("name")
    if name not in MODELS:
        raise ValueError(f"config.model.name must be one of {tuple(MODELS)}, got {name!r}")
    if not arguments.get("video_feature_dim") or not arguments.get("max_position"):
        raise ValueError("config.model.video_feature_dim and max_position must be set (configs.resolve fills them)")
    model = MODELS[name](vocabulary_size=vocabulary_size, num_chars=num_chars, word_vectors=word_vectors, **arguments)
    model(model.dummy_batch())
    return model


def zeros_batch(batch_size, max_video_len, max_query_len, max_word_len, video_feature_dim):
    """An all-padding batch with the input pipeline's static shapes, for building models and tracing steps."""
    return {
        "video_features": tf.zeros([batch_size, max_video_len, video_feature_dim]),
        "video_length": tf.ones([batch_size], tf.int32),
        "word_ids": tf.zeros([batch_size, max_query_len], tf.int32),
        "char_ids": tf.zeros([batch_size, max_query_len, max_word_len], tf.int32),
    }
