"""Input embeddings (paper Sec. 3.2): frozen word vectors and the authors' character CNN."""

import keras
import numpy as np
import tensorflow as tf

from nlvl_tf.data.text import FIRST_WORD_ID, PAD_ID, UNK_ID
from nlvl_tf.model.layers import arguments, dropout


@keras.saving.register_keras_serializable(package="nlvl_tf")
class WordEmbedding(keras.layers.Layer):
    """Word ids -> vectors: id 0 (PAD) is a constant zero row, id 1 (UNK) a trainable row, ids 2.. FROZEN vectors.

    Args:
        vocabulary_size: size of the word id space, PAD and UNK included (`text.Vocabulary.num_words`); ids 2 ..
            vocabulary_size - 1 have pretrained rows.
        embedding_dim: vector size (300 for GloVe).
        pretrained: optional float array [vocabulary_size - 2, embedding_dim]; not part of the config (a weight).
        dropout: rate on the looked-up vectors.

    Call arguments:
        word_ids: int [B, M].

    Returns:
        [B, M, embedding_dim].

    Example:
    >>> layer = WordEmbedding(vocabulary_size=1302, embedding_dim=300, pretrained=glove_rows)
    >>> vectors = layer(word_ids)
    """

    def __init__(self, vocabulary_size, embedding_dim=300, pretrained=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = arguments.positive_int("vocabulary_size", vocabulary_size)
        self.embedding_dim = arguments.positive_int("embedding_dim", embedding_dim)
        self.dropout = arguments.rate("dropout", dropout)
        if self.vocabulary_size < FIRST_WORD_ID:
            raise ValueError(
                f"vocabulary_size counts PAD and UNK, so it must be >= {FIRST_WORD_ID}, got {vocabulary_size}"
            )
        rows = self.vocabulary_size - FIRST_WORD_ID
        if pretrained is not None and np.shape(pretrained) != (rows, self.embedding_dim):
            raise ValueError(
                f"pretrained vectors have shape {np.shape(pretrained)}, expected ({rows}, {self.embedding_dim}): one "
                f"row per word id from {FIRST_WORD_ID} to vocabulary_size - 1"
            )
        self._pretrained = pretrained

    def build(self, word_ids_shape):
        pretrained = self._pretrained
        rows = self.vocabulary_size - FIRST_WORD_ID
        initializer = "zeros" if pretrained is None else (lambda shape, dtype=None: tf.constant(pretrained, tf.float32))
        # A one-row table keeps the gather valid when no word has a vector.
        self.pretrained_vectors = self.add_weight(
            name="pretrained_vectors",
            shape=(max(rows, 1), self.embedding_dim),
            initializer=initializer if rows else "zeros",
            trainable=False,
        )
        self.unknown_vector = self.add_weight(
            name="unknown_vector", shape=(self.embedding_dim,), initializer="glorot_uniform"
        )
        self.dropout_layer = dropout.Dropout(self.dropout, dtype=self.dtype_policy)
        self._pretrained = None

    def call(self, word_ids, training=None):
        word_ids = tf.cast(word_ids, tf.int32)
        vectors = tf.gather(self.pretrained_vectors, tf.maximum(word_ids - FIRST_WORD_ID, 0))
        ids = word_ids[..., tf.newaxis]
        vectors = tf.where(ids == UNK_ID, tf.cast(self.unknown_vector, vectors.dtype), vectors)
        vectors = tf.where(ids == PAD_ID, tf.zeros_like(vectors), vectors)
        return self.dropout_layer(vectors, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="nlvl_tf")
class CharacterCNN(keras.layers.Layer):
    """The authors' character CNN: char table (PAD row constant zero), parallel VALID convolutions of widths 1-4 with
    10/20/30/40 filters, ReLU, max over positions, concatenated (100-d per word).

    The max runs over the windows that lie entirely inside the word (for a word shorter than the kernel, the first
    window), so the result does not depend on how far the character axis is padded. The authors pad to the batch's
    longest word and take every window, so their features for a short word change with the batch: not a small
    difference (up to 3.1 on the 100-d features, measured against their PyTorch model with the same weights).

    Args:
        num_chars: size of the character vocabulary including PAD (0) and UNK (1).
        char_dim: character embedding size (50).
        kernel_widths, filters: per-convolution widths and output channels.
        dropout: rate on the character embeddings, before the convolutions.

    Call arguments:
        char_ids: int [B, M, W] with W >= the largest kernel width.

    Returns:
        [B, M, sum(filters)].

    Example:
    >>> layer = CharacterCNN(num_chars=40)
    >>> features = layer(char_ids)  # [B, M, 100]
    """

    def __init__(
        self, num_chars, char_dim=50, kernel_widths=(1, 2, 3, 4), filters=(10, 20, 30, 40), dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_chars = arguments.positive_int("num_chars", num_chars)
        if self.num_chars < FIRST_WORD_ID:
            raise ValueError(f"num_chars counts PAD and UNK, so it must be >= {FIRST_WORD_ID}, got {num_chars}")
        self.char_dim = arguments.positive_int("char_dim", char_dim)
        self.kernel_widths = arguments.positive_ints("kernel_widths", kernel_widths)
        self.filters = arguments.positive_ints("filters", filters)
        if len(self.kernel_widths) != len(self.filters):
            raise ValueError(f"kernel_widths {self.kernel_widths} and filters {self.filters} must have equal lengths")
        self.dropout = arguments.rate("dropout", dropout)

    def build(self, char_ids_shape):
        self.char_table = self.add_weight(
            name="char_table", shape=(self.num_chars - 1, self.char_dim), initializer="glorot_uniform"
        )
        # A tuple, which tf.train.Checkpoint tracks (a list of layers it would not see).
        self.convolutions = tuple(
            keras.layers.Conv1D(
                channels, width, padding="valid", activation="relu", dtype=self.dtype_policy, name=f"char_conv_{width}"
            )
            for width, channels in zip(self.kernel_widths, self.filters)
        )
        for conv in self.convolutions:
            conv.build((None, None, self.char_dim))
        self.dropout_layer = dropout.Dropout(self.dropout, dtype=self.dtype_policy)

    def call(self, char_ids, training=None):
        char_ids = tf.cast(char_ids, tf.int32)
        max_word_length = char_ids.shape[-1]
        if max_word_length is not None and max_word_length < max(self.kernel_widths):
            raise ValueError(
                f"{self.name}: char_ids are padded to {max_word_length} characters, fewer than the "
                f"widest kernel ({max(self.kernel_widths)}); pad words to at least that length"
            )
        char_table = tf.convert_to_tensor(self.char_table)
        table = tf.concat([tf.zeros([1, self.char_dim], char_table.dtype), char_table], axis=0)
        outer_shape = tf.shape(char_ids)[:-1]
        chars = tf.reshape(char_ids, [-1, tf.shape(char_ids)[-1]])
        embedded = self.dropout_layer(tf.gather(table, chars), training=training)
        word_lengths = tf.reduce_sum(tf.cast(chars != PAD_ID, tf.int32), axis=-1)
        pooled = []
        for width, conv in zip(self.kernel_widths, self.convolutions):
            windows = conv(embedded)
            usable = tf.sequence_mask(tf.maximum(word_lengths - width + 1, 1), tf.shape(windows)[1])
            pooled.append(tf.reduce_max(tf.where(usable[..., tf.newaxis], windows, tf.zeros_like(windows)), axis=1))
        features = tf.concat(pooled, axis=-1)
        return tf.reshape(features, tf.concat([outer_shape, [sum(self.filters)]], axis=0))

    def get_config(self):
        return {
            **super().get_config(),
            "num_chars": self.num_chars,
            "char_dim": self.char_dim,
            "kernel_widths": self.kernel_widths,
            "filters": self.filters,
            "dropout": self.dropout,
        }
