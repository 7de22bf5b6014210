"""Tests of nlvl_tf.text: tokenizer, vocabulary, query encoding, word vectors."""

import os

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.data import text, word_vectors

# Queries shaped like the edge cases of the real annotation files (datasets.md section 4) and the
# tokens nltk's word_tokenize (3.10, Punkt + Treebank) gives for them.
TOKENIZER_CASES = [
    ("  A man is seen speaking to the camera.", ["a", "man", "is", "seen", "speaking", "to", "the", "camera", "."]),
    ("\n", []),
    ("", []),
    (" A woman\nwalks   in.  ", ["a", "woman", "walks", "in", "."]),
    (
        "The señor crosses the café with a “big” smile.",
        ["the", "señor", "crosses", "the", "café", "with", "a", "“", "big", "”", "smile", "."],
    ),
    ("He says ’hi’ and leaves", ["he", "says", "’", "hi", "’", "and", "leaves"]),
    ("ÉCOLE Ñandú", ["école", "ñandú"]),
    ("person #1 opens the door.", ["person", "#", "1", "opens", "the", "door", "."]),
    (
        "The man isn't here, he's gone and they'll come; can't you see?",
        ["the", "man", "is", "n't", "here", ",", "he", "'s", "gone", "and", "they", "'ll", "come", ";"]
        + ["ca", "n't", "you", "see", "?"],
    ),
    ("The dogs' toys and the man's hat", ["the", "dogs", "'", "toys", "and", "the", "man", "'s", "hat"]),
    ("She is 'lying' about it", ["she", "is", "'", "lying", "'", "about", "it"]),
    ("He is 5'9 tall", ["he", "is", "5'9", "tall"]),
    (
        "He took out a pan. He put it on the stove.",
        ["he", "took", "out", "a", "pan", ".", "he", "put", "it", "on", "the", "stove", "."],
    ),
    ("Mr. Smith walks.", ["mr.", "smith", "walks", "."]),
    ("He peels the carrot", ["he", "peels", "the", "carrot"]),
    ("He cuts the potato into quarters...", ["he", "cuts", "the", "potato", "into", "quarters", "..."]),
    (
        'The man (in red) says "hello" -- twice!',
        ["the", "man", "(", "in", "red", ")", "says", "``", "hello", "''", "--", "twice", "!"],
    ),
    ("gonna wanna cannot", ["gon", "na", "wan", "na", "can", "not"]),
]


def decoded(ragged):
    return [[token.decode("utf-8") for token in row] for row in ragged.to_list()]


def test_tokenizer_on_the_edge_cases_of_the_real_files():
    got = decoded(text.tokenize([query for query, _ in TOKENIZER_CASES]))
    for (query, want), tokens in zip(TOKENIZER_CASES, got):
        assert tokens == want, query


def test_tokenizer_inside_a_traced_function():
    traced = tf.function(text.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    assert decoded(traced(tf.constant(["person #1 opens the door."]))) == [TOKENIZER_CASES[7][1]]


# ------------------------------------------------------------------------------ vocabulary

QUERIES = ["A man opens a door.", "The man walks.", "A zebra walks"]
# Word counts in order of first occurrence: a 3, man 2, opens 1, door 1, . 2, the 1, walks 2, zebra 1.
# Char counts (first occurrence order): a 8, m 2, n 3, o 3, p 1, e 3, s 3, d 1, r 2, . 2, t 1, h 1,
# w 2, l 2, k 2, z 1, b 1.


def write_glove(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for word, vector in rows:
            f.write(word + " " + " ".join(f"{value:.6f}" for value in vector) + "\n")


@pytest.fixture
def glove_file(tmp_path):
    """GloVe-format file: cased keys, a key with spaces (as in glove.840B), no vector for 'zebra'."""
    path = str(tmp_path / "glove.txt")
    rows = [
        (".", [0.1, 0.2]),
        ("the", [1.0, 1.5]),
        (". . .", [9.0, 9.0, 9.0]),  # the key holds spaces: its line has 3 fields after the first
        ("Man", [7.0, 7.0]),  # cased key: the lower-cased token "man" does not match it
        ("a", [2.0, -2.0]),
        ("walks", [3.0, 0.5]),
        ("man", [4.0, 4.5]),
        ("door", [5.0, 5.5]),
    ]
    write_glove(path, rows)
    return path


def test_vocabulary_ids_follow_frequency_with_ties_in_first_occurrence_order(glove_file, tmp_path):
    vocabulary = text.build_vocabulary(
        QUERIES, QUERIES, vectors_path=glove_file, cache_dir=str(tmp_path / "cache"), min_char_count=3
    )
    # Counts: a 3; man, ".", walks 2 (first seen in that order); opens, door, the, zebra 1.
    # "opens" and "zebra" have no vector.
    assert vocabulary.words == ("a", "man", ".", "walks", "door", "the")
    np.testing.assert_allclose(
        vocabulary.vectors, [[2.0, -2.0], [4.0, 4.5], [0.1, 0.2], [3.0, 0.5], [5.0, 5.5], [1.0, 1.5]], rtol=1e-6
    )
    # Chars with count >= 3, most frequent first, ties in order of first occurrence.
    assert vocabulary.chars == ("a", "n", "o", "e", "s")
    assert (vocabulary.num_words, vocabulary.num_chars) == (8, 7)


def test_vocabulary_save_load_round_trip(glove_file, tmp_path):
    vocabulary = text.build_vocabulary(QUERIES, QUERIES, vectors_path=glove_file, cache_dir=str(tmp_path / "c"))
    vocabulary.save(str(tmp_path / "vocab"))
    with open(tmp_path / "vocab" / text.WORDS_FILE, encoding="utf-8") as f:
        assert f.read().split("\n")[:4] == ["<pad>", "<unk>", "a", "man"]
    loaded = text.Vocabulary.load(str(tmp_path / "vocab"))
    assert (loaded.words, loaded.chars) == (vocabulary.words, vocabulary.chars)
    np.testing.assert_array_equal(loaded.vectors, vocabulary.vectors)


def test_vocabulary_load_rejects_a_file_without_the_reserved_lines(tmp_path):
    text.Vocabulary(("a",), ("a",), np.zeros((1, 2), np.float32)).save(str(tmp_path))
    (tmp_path / text.CHARS_FILE).write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chars.txt: the first two lines"):
        text.Vocabulary.load(str(tmp_path))


def test_query_encoder_ids_against_a_hand_made_vocabulary(tmp_path):
    text.Vocabulary(("a", "man", ".", "walks"), ("a", "n", "m", "é"), np.zeros((4, 2), np.float32)).save(str(tmp_path))
    encoder = text.QueryEncoder(str(tmp_path), max_query_len=4, max_word_len=3)
    word_ids, char_ids = encoder(tf.constant(["A Man walks.", "A café man walks away.", ""]))
    # Word ids: a 2, man 3, . 4, walks 5, UNK 1; truncated to 4 tokens, padded with 0.
    np.testing.assert_array_equal(word_ids.numpy(), [[2, 3, 5, 4], [2, 1, 3, 5], [0, 0, 0, 0]])
    # Char ids: a 2, n 3, m 4, é 5, UNK 1; truncated to 3 chars per word, padded with 0.
    expected_chars = [
        [[2, 0, 0], [4, 2, 3], [1, 2, 1], [1, 0, 0]],  # a | man | wal(ks) | .
        [[2, 0, 0], [1, 2, 1], [4, 2, 3], [1, 2, 1]],  # a | caf(é) | man | wal(ks)
        [[0, 0, 0]] * 4,
    ]
    np.testing.assert_array_equal(char_ids.numpy(), expected_chars)
    assert word_ids.dtype == char_ids.dtype == tf.int32


def test_query_encoder_in_a_dataset_has_static_shapes(tmp_path):
    text.Vocabulary(("a",), ("a",), np.zeros((1, 2), np.float32)).save(str(tmp_path))
    encoder = text.QueryEncoder(str(tmp_path), max_query_len=5, max_word_len=4)
    dataset = tf.data.Dataset.from_tensor_slices(["a b", "b a a"]).batch(2, drop_remainder=True).map(encoder)
    word_spec, char_spec = dataset.element_spec
    assert (word_spec.shape, char_spec.shape) == ((2, 5), (2, 5, 4))
    word_ids, _ = next(iter(dataset))
    np.testing.assert_array_equal(word_ids.numpy(), [[2, 1, 0, 0, 0], [1, 2, 2, 0, 0]])


def test_query_encoder_names_a_missing_vocabulary(tmp_path):
    with pytest.raises(FileNotFoundError, match="words.txt"):
        text.QueryEncoder(str(tmp_path), 4, 4)


# ------------------------------------------------------------------------------ word vectors


def test_glove_vectors_are_cached_and_the_cache_is_used(glove_file, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    words, vectors = word_vectors.load_word_vectors(glove_file, ["man", "zebra", "the"], cache_dir=cache)
    assert words == ["man", "the"]
    np.testing.assert_allclose(vectors, [[4.0, 4.5], [1.0, 1.5]], rtol=1e-6)
    assert len(os.listdir(cache)) == 1

    def fail(*args):
        raise AssertionError("the vectors file was read again")

    monkeypatch.setattr(word_vectors, "_read_glove", fail)
    cached_words, cached_vectors = word_vectors.load_word_vectors(glove_file, ["man", "zebra", "the"], cache_dir=cache)
    assert cached_words == words
    np.testing.assert_array_equal(cached_vectors, vectors)
    # Another word list is another cache entry: the file is read again.
    with pytest.raises(AssertionError, match="read again"):
        word_vectors.load_word_vectors(glove_file, ["man"], cache_dir=cache)


def test_a_changed_vectors_file_is_read_again(glove_file, tmp_path):
    cache = str(tmp_path / "cache")
    word_vectors.load_word_vectors(glove_file, ["man"], cache_dir=cache)
    write_glove(glove_file, [("man", [-1.0, -2.0]), ("woman", [0.0, 0.0])])
    _, vectors = word_vectors.load_word_vectors(glove_file, ["man"], cache_dir=cache)
    np.testing.assert_allclose(vectors, [[-1.0, -2.0]])


@pytest.mark.parametrize(
    "content, message",
    [
        ("the 1.0 2.0\nman 1.0\n", r"glove.txt, line 2: 1 values, expected 2"),
        ("the 1.0 2.0\nman 1.0 x2\n", r"glove.txt, line 2: non-numeric vector values for 'man'"),
        ("the 1.0 2.0\nman\n", r"glove.txt, line 2: expected 'word v1 v2 ...'"),
        ("", r"glove.txt: empty word vectors file"),
    ],
)
def test_a_corrupt_glove_file_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "glove.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        word_vectors.load_word_vectors(str(path), ["the", "man"], vectors_format="glove", cache_dir=str(tmp_path / "c"))


def test_a_missing_vectors_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        word_vectors.load_word_vectors(str(tmp_path / "nowhere.txt"), ["a"])


@pytest.mark.parametrize(
    "file_name, save",
    [
        ("vectors.txt", lambda kv, path: kv.save_word2vec_format(path, binary=False)),
        ("vectors.bin", lambda kv, path: kv.save_word2vec_format(path, binary=True)),
        ("vectors.kv", lambda kv, path: kv.save(path)),
    ],
)
def test_word2vec_and_keyed_vectors_files_through_gensim(tmp_path, file_name, save):
    from gensim.models import KeyedVectors

    keyed_vectors = KeyedVectors(vector_size=3)
    keyed_vectors.add_vectors(["man", "door", "Zebra"], np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], np.float32))
    path = str(tmp_path / file_name)
    save(keyed_vectors, path)
    words, vectors = word_vectors.load_word_vectors(path, ["zebra", "door", "man"], cache_dir=str(tmp_path / "c"))
    assert words == ["door", "man"]
    np.testing.assert_allclose(vectors, [[4, 5, 6], [1, 2, 3]])


def test_a_corrupt_word2vec_file_names_the_file(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("2 3\nman 1 2 3\ndoor 4 5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cannot read word2vec word vectors from .*vectors.txt"):
        word_vectors.load_word_vectors(str(path), ["man"], cache_dir=str(tmp_path / "c"))


def test_word2vec_fallback_is_deterministic_and_trained_on_training_queries_only():
    training = ["a man opens the door .", "the man walks", "a woman walks to the door"] * 5
    test_only = ["a zebra dances"]
    first = text.build_vocabulary(training + test_only, training, word2vec_dim=6, min_char_count=1, seed=3)
    second = text.build_vocabulary(training + test_only, training, word2vec_dim=6, min_char_count=1, seed=3)
    # "zebra" and "dances" appear only in the test queries: no vector, so they are UNK.
    assert set(first.words) == {"a", "man", "opens", "the", "door", ".", "walks", "woman", "to"}
    assert first.vectors.shape == (9, 6) and first.vectors.dtype == np.float32
    np.testing.assert_array_equal(first.vectors, second.vectors)
    other_seed = text.build_vocabulary(training, training, word2vec_dim=6, min_char_count=1, seed=4)
    assert not np.allclose(other_seed.vectors, first.vectors)
