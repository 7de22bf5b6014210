"""Word embedding (zero PAD, trainable UNK, frozen vectors) and the character CNN against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.model.layers import embedding
from tests.layers import checks

RNG = np.random.default_rng(4)
VECTORS = RNG.normal(size=(5, 3)).astype("float32")


def test_word_embedding_rows():
    layer = embedding.WordEmbedding(7, 3, pretrained=VECTORS)
    ids = np.array([[2, 6, 1, 0], [3, 0, 0, 0]])
    got = layer(ids).numpy()
    unk = layer.unknown_vector.numpy()
    np.testing.assert_array_equal(got[0], np.stack([VECTORS[0], VECTORS[4], unk, np.zeros(3)]))
    np.testing.assert_array_equal(got[1, 0], VECTORS[1])
    np.testing.assert_array_equal(got[1, 1:], 0.0)


def test_only_unk_is_trainable_and_gradients_skip_the_frozen_vectors():
    layer = embedding.WordEmbedding(7, 3, pretrained=VECTORS)
    ids = tf.constant([[2, 1, 0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids) ** 2)
    assert [v.name for v in layer.trainable_variables] == ["unknown_vector"]
    assert [v.name for v in layer.non_trainable_variables] == ["pretrained_vectors"]
    (grad,) = tape.gradient(loss, layer.trainable_variables)
    np.testing.assert_allclose(grad, 2 * layer.unknown_vector.numpy(), rtol=1e-6)


def test_wrong_pretrained_shape_is_rejected():
    with pytest.raises(ValueError, match=r"shape \(5, 3\), expected \(4, 3\)"):
        embedding.WordEmbedding(6, 3, pretrained=VECTORS)


def _numpy_char_cnn(layer, ids):
    """Invariant padding: windows inside the word, PAD row zero. Authors': every window starting within the batch's
    longest word, PAD row `pad_vector`."""
    authors = layer.padding_semantics == "authors"
    pad_row = layer.pad_vector.numpy() if authors else np.zeros(layer.char_dim)
    table = np.concatenate([pad_row[None], layer.char_table.numpy()])
    longest = int((ids != 0).sum(-1).max())
    out = []
    for word in ids.reshape(-1, ids.shape[-1]):
        length = longest if authors else int((word != 0).sum())
        emb = table[word]
        features = []
        for width, conv in zip(layer.kernel_widths, layer.convolutions):
            kernel, bias = [w.numpy() for w in conv.weights]
            windows = range(max(length - width + 1, 1))
            values = [np.maximum(np.einsum("kc,kcf->f", emb[i : i + width], kernel) + bias, 0) for i in windows]
            features.append(np.max(values, axis=0))
        out.append(np.concatenate(features))
    return np.array(out).reshape(*ids.shape[:-1], -1)


def test_character_cnn_matches_numpy_on_words_in_the_word():
    layer = embedding.CharacterCNN(num_chars=9, char_dim=4, kernel_widths=(1, 2, 3), filters=(2, 3, 4))
    ids = np.array([[[2, 3, 4, 5, 0, 0], [6, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0]]])
    got = layer(ids).numpy()
    assert got.shape == (1, 3, 9)
    np.testing.assert_allclose(got, _numpy_char_cnn(layer, ids), atol=1e-5)


def _authors_and_invariant_cnns(num_chars=9, char_dim=4, **kwargs):
    """The two paddings with the same weights; the authors' PAD row random, as an imported checkpoint may hold."""
    invariant = embedding.CharacterCNN(num_chars, char_dim, **kwargs)
    authors = embedding.CharacterCNN(num_chars, char_dim, padding_semantics="authors", **kwargs)
    ids = np.ones((1, 1, 4), "int32")
    invariant(ids), authors(ids)
    authors.char_table.assign(invariant.char_table)
    for mine, theirs in zip(authors.convolutions, invariant.convolutions):
        mine.set_weights(theirs.get_weights())
    authors.pad_vector.assign(RNG.normal(size=char_dim))
    return invariant, authors


def test_authors_character_cnn_pools_every_window_of_the_batchs_longest_word_whatever_w():
    _, layer = _authors_and_invariant_cnns(kernel_widths=(1, 2, 3), filters=(2, 3, 4))
    ids = np.array([[[2, 3, 4, 5, 0, 0], [6, 0, 0, 0, 0, 0], [7, 8, 0, 0, 0, 0]], [[0] * 6] * 3])
    got = layer(ids).numpy()
    np.testing.assert_allclose(got, _numpy_char_cnn(layer, ids), atol=1e-5)
    np.testing.assert_allclose(layer(np.pad(ids, ((0, 0), (0, 0), (0, 10)))), got, atol=1e-6)
    assert [w.name for w in layer.non_trainable_weights] == ["pad_vector"]


def test_the_two_paddings_agree_on_words_of_one_length_and_differ_on_shorter_words():
    """At the authors' sizes (50-d characters, widths 1-4, 100-d output, Glorot weights, zero biases) with W = 16.
    Measured here: words of 1 to 3 characters beside a 9-character word differ by up to about 0.4 with these random
    weights (against the authors' trained weights: up to 3.1, docs/model.md 9)."""
    invariant, authors = _authors_and_invariant_cnns(num_chars=40, char_dim=50)
    same_length = RNG.integers(2, 40, size=(2, 3, 16)).astype("int32")
    same_length[..., 6:] = 0
    np.testing.assert_allclose(authors(same_length), invariant(same_length), atol=1e-5)
    mixed = np.zeros((1, 4, 16), "int32")
    for index, length in enumerate((9, 1, 2, 3)):
        mixed[0, index, :length] = RNG.integers(2, 40, size=length)
    difference = np.abs(authors(mixed).numpy() - invariant(mixed).numpy()).max(axis=-1)[0]
    assert difference[0] < 1e-5 and np.all(difference[1:] > 0.05), difference


def test_character_padding_length_does_not_change_features():
    layer = embedding.CharacterCNN(num_chars=9, char_dim=4)
    ids = np.array([[[2, 3, 0, 0], [4, 5, 6, 7]]])
    short = layer(ids)
    long = layer(np.pad(ids, ((0, 0), (0, 0), (0, 8))))
    np.testing.assert_allclose(long, short, atol=1e-6)


def test_char_pad_row_is_constant_zero_and_parameter_count_matches_authors():
    layer = embedding.CharacterCNN(num_chars=40)
    layer(np.zeros((1, 1, 4), "int32"))
    assert layer.count_params() == 39 * 50 + 15_100


def test_character_cnn_needs_words_padded_to_the_widest_kernel():
    with pytest.raises(ValueError, match="fewer than the widest kernel"):
        embedding.CharacterCNN(num_chars=5)(np.zeros((1, 1, 3), "int32"))


def test_round_trips():
    ids = np.array([[2, 6, 1, 0]])
    checks.assert_round_trip(embedding.WordEmbedding(7, 3, pretrained=VECTORS, dropout=0.1), lambda e: e(ids))
    chars = RNG.integers(0, 9, size=(2, 3, 5))
    checks.assert_round_trip(embedding.CharacterCNN(9, 4, (1, 2), (3, 2)), lambda e: e(chars))
