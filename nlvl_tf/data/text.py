"""Query text: tokenizer, vocabularies and query encoding.

One tokenizer (`tokenize`, TensorFlow string ops only) serves training, vocabulary building and the
exported SavedModel, so a query is split the same way everywhere. It follows what the authors ran,
`nltk.word_tokenize(s.strip().lower())` (Punkt sentence splitting + NLTK's improved Treebank
tokenizer, docs/model.md 1.2), rewritten for RE2: lower-case (Unicode), punctuation split off, Treebank
contractions ("n't", "'s", "'re", "'ll", "'ve", "'m", "'d", "can not", "gon na"), `#` a token,
curly quotes their own tokens, a period that ends a sentence inside the query split off (what Punkt
sentence splitting does, except after a few abbreviations such as "mr."). Changing any rule changes
`TOKENIZER_VERSION`, which the export records.

Vocabulary (docs/model.md 1.3, 1.4): word ids 0 = PAD, 1 = UNK, 2.. = words that have a vector, by frequency;
char ids 0 = PAD, 1 = UNK, 2.. = chars seen at least `min_char_count` times. A `Vocabulary` is saved
as plain text files (`words.txt`, `chars.txt`, line number = id) plus `word_vectors.npy` (the rows of
ids 2..). `QueryEncoder` maps raw query strings to (word_ids, char_ids) with lookup tables built from
those files, so the same lookups run in tf.data and in the SavedModel (the files become its assets).

Word vectors come from `word_vectors` (a pre-trained file, or Word2Vec trained on the training queries).
"""

import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from nlvl_tf.data import word_vectors

TOKENIZER_VERSION = 1

# Word and char ids: 0 = PAD, 1 = UNK, then the vocabulary's entries from FIRST_WORD_ID on. The one definition, which
# the model's embedding layers share.
PAD_ID = 0
UNK_ID = 1
FIRST_WORD_ID = 2
# Reserved first lines of words.txt / chars.txt. The tokenizer never emits them: "<" and ">" are
# split off as tokens and a character is a single code point.
_PAD_ENTRY = "<pad>"
_UNK_ENTRY = "<unk>"
WORDS_FILE = "words.txt"
CHARS_FILE = "chars.txt"
VECTORS_FILE = "word_vectors.npy"

# Every Unicode whitespace (Python's str.split set), folded to one space before the rules run.
_WHITESPACE = r"[\s\x0b\x1c-\x1f\x{85}\p{Z}]+"
# Python's Unicode \w (RE2's \w is ASCII only) and its complement.
_WORD_CHAR = r"[\pL\pN_]"
_NON_WORD_CHAR = r"[^\pL\pN_]"
_CLOSING = r"[\]\)}>\"'»”’]"
# After these a period followed by more text is not a sentence end (Punkt's common abbreviations).
_ABBREVIATIONS = "mr|mrs|ms|dr|st|jr|sr|vs|prof|mt"

# (RE2 pattern, rewrite) in order; NLTKWordTokenizer's rules (nltk 3.10) with the lookarounds
# rewritten as two steps. Comments name the nltk rule groups.
_RULES = (
    # STARTING_QUOTES
    (r"([«“‘„]|`+)", r" \1 "),
    (r'^"', r"``"),
    (r"(``)", r" \1 "),
    (r"([ \(\[{<])(\"|'')", r"\1 `` "),
    # An opening ' before a word is split off unless it starts a clitic ('s, 're, ...): split all,
    # then rejoin the clitics.
    (rf"(^|{_NON_WORD_CHAR})'({_WORD_CHAR})", r"\1' \2"),
    (rf"(^|{_NON_WORD_CHAR})' (re|ve|ll|m|t|s|d|n)($|{_NON_WORD_CHAR})", r"\1'\2\3"),
    # PUNCTUATION: the final period of the query, then of every inner sentence (Punkt), except
    # after an abbreviation followed by more text.
    (rf"([^.])\.({_CLOSING}*)$", r"\1 . \2 "),
    (rf"([^.\s])\.({_CLOSING}*) ", r"\1 . \2 "),
    (rf"(^| )({_ABBREVIATIONS}) \. +(\S)", r"\1\2. \3"),
    (r"([:,])([^\p{Nd}])", r" \1 \2"),
    (r"([:,])$", r" \1 "),
    (r"\.{2,}", r" \0 "),
    (r"[;@#$%&]", r" \0 "),
    (r"[\x{2012}-\x{2015}]", r" \0 "),
    (r"[?!]", r" \0 "),
    (r"([^'])' ", r"\1 ' "),
    (r"[*]", r" \0 "),
    # PARENS_BRACKETS, DOUBLE_DASHES, then padding with spaces for the ENDING_QUOTES rules.
    (r"[\]\[\(\)\{\}<>]", r" \0 "),
    (r"--", r" -- "),
    (r"^(.*)$", r" \1 "),
    # ENDING_QUOTES
    (r"([»”’])", r" \1 "),
    (r"''", r" '' "),
    (r'"', r" '' "),
    (r"\s+", r" "),
    (r"([^' ])('s|'m|'d|') ", r"\1 \2 "),
    (r"([^' ])('ll|'re|'ve|n't) ", r"\1 \2 "),
    # CONTRACTIONS2, CONTRACTIONS3
    (r"\b(can)(not)\b", r" \1 \2 "),
    (r"\b(d)('ye)\b", r" \1 \2 "),
    (r"\b(gim)(me)\b", r" \1 \2 "),
    (r"\b(gon)(na)\b", r" \1 \2 "),
    (r"\b(got)(ta)\b", r" \1 \2 "),
    (r"\b(lem)(me)\b", r" \1 \2 "),
    (r"\b(more)('n)\b", r" \1 \2 "),
    (r"\b(wan)(na)(\s)", r" \1 \2 \3"),
    (r" ('t)(is)\b", r" \1 \2 "),
    (r" ('t)(was)\b", r" \1 \2 "),
)


def tokenize(queries):
    """Splits raw queries into lower-cased Treebank tokens.

    Args:
        queries: string tensor (or list of str) [B], UTF-8.
    Returns:
        tf.RaggedTensor of strings [B, (tokens)]; an empty or blank query gives no tokens.
    """
    text = tf.strings.regex_replace(tf.convert_to_tensor(queries, tf.string), _WHITESPACE, " ")
    text = tf.strings.lower(tf.strings.strip(text), encoding="utf-8")
    for pattern, rewrite in _RULES:
        text = tf.strings.regex_replace(text, pattern, rewrite)
    return tf.strings.split(text)


def tokenize_to_lists(queries, batch_size=4096):
    """`tokenize` for Python callers: a list of str queries -> a list of lists of str tokens."""
    queries = list(queries)
    token_lists = []
    for first in range(0, len(queries), batch_size):
        for tokens in tokenize(queries[first : first + batch_size]).to_list():
            token_lists.append([token.decode("utf-8", errors="replace") for token in tokens])
    return token_lists


def count_tokens(token_lists):
    """Counts word and character occurrences, in order of first occurrence.

    Characters are counted once per character of every word occurrence (docs/model.md 1.4), as code points.
    Returns:
        (word_counts, char_counts): collections.Counter of str.
    """
    word_counts, char_counts = collections.Counter(), collections.Counter()
    for tokens in token_lists:
        for word in tokens:
            word_counts[word] += 1
            char_counts.update(word)
    return word_counts, char_counts


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Words and characters with their ids, and the word vectors (docs/model.md 1.3, 1.4).

    Attributes:
        words: the words of ids 2, 3, ... in order (ids 0 and 1 are PAD and UNK).
        chars: the characters of ids 2, 3, ... in order.
        vectors: float32 [len(words), dim]; row k is the vector of word id k + 2. The model adds
            the PAD (zero) and UNK (trainable) rows itself.
    """

    words: tuple
    chars: tuple
    vectors: np.ndarray

    def __post_init__(self):
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(f"vectors must be [{len(self.words)}, dim] (one row per word), got {self.vectors.shape}")

    @property
    def num_words(self):
        """Size of the word id space, PAD and UNK included."""
        return len(self.words) + 2

    @property
    def num_chars(self):
        """Size of the char id space, PAD and UNK included."""
        return len(self.chars) + 2

    def save(self, directory):
        """Writes words.txt and chars.txt (line number = id) and word_vectors.npy to `directory`."""
        os.makedirs(directory, exist_ok=True)
        for name, entries in ((WORDS_FILE, self.words), (CHARS_FILE, self.chars)):
            with open(os.path.join(directory, name), "w", encoding="utf-8", newline="\n") as f:
                f.write("\n".join((_PAD_ENTRY, _UNK_ENTRY) + tuple(entries)) + "\n")
        np.save(os.path.join(directory, VECTORS_FILE), self.vectors.astype(np.float32))

    @classmethod
    def load(cls, directory):
        """Reads a vocabulary written by `save`."""
        entries = {}
        for name in (WORDS_FILE, CHARS_FILE):
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8", newline="\n") as f:
                lines = f.read().split("\n")[:-1]
            if lines[:2] != [_PAD_ENTRY, _UNK_ENTRY]:
                raise ValueError(f"{path}: the first two lines must be {_PAD_ENTRY} and {_UNK_ENTRY}")
            entries[name] = tuple(lines[2:])
        vectors = np.load(os.path.join(directory, VECTORS_FILE), allow_pickle=False)
        return cls(entries[WORDS_FILE], entries[CHARS_FILE], vectors)


class QueryEncoder(tf.Module):
    """Raw queries -> (word_ids, char_ids), the one encoding training and serving share.

    The lookup tables are read from a saved `Vocabulary` directory; saved inside a SavedModel, the
    text files travel as its assets.

    Args:
        vocabulary_dir: directory written by `Vocabulary.save`.
        max_query_len: M, tokens kept per query (the rest is truncated).
        max_word_len: W, characters kept per token (the rest is truncated).
    """

    def __init__(self, vocabulary_dir, max_query_len, max_word_len, name=None):
        super().__init__(name=name)
        self.max_query_len = max_query_len
        self.max_word_len = max_word_len
        self.word_table = self._line_number_table(os.path.join(vocabulary_dir, WORDS_FILE))
        self.char_table = self._line_number_table(os.path.join(vocabulary_dir, CHARS_FILE))

    @classmethod
    def from_config(cls, vocabulary_dir, data_config):
        """The encoder of a run: config.data's max_query_len and max_word_len."""
        return cls(vocabulary_dir, data_config.max_query_len, data_config.max_word_len)

    @staticmethod
    def _line_number_table(path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vocabulary file not found: {path}")
        initializer = tf.lookup.TextFileInitializer(
            path,
            key_dtype=tf.string,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_dtype=tf.int64,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)

    def __call__(self, queries):
        """Encodes queries.

        Args:
            queries: string tensor [B] of raw text.
        Returns:
            word_ids: int32 [B, M], 0 = PAD past the query's tokens, 1 = UNK.
            char_ids: int32 [B, M, W], 0 = PAD past a token's characters, 1 = UNK.
        """
        queries = tf.convert_to_tensor(queries, tf.string)
        tokens = tokenize(queries)
        word_ids = tf.ragged.map_flat_values(self.word_table.lookup, tokens)
        chars = tf.strings.unicode_split(tokens, "UTF-8")
        char_ids = tf.ragged.map_flat_values(self.char_table.lookup, chars)
        batch_size = queries.shape[0]  # static when the queries' batch size is
        word_ids = word_ids.to_tensor(PAD_ID, shape=[batch_size, self.max_query_len])
        char_ids = char_ids.to_tensor(PAD_ID, shape=[batch_size, self.max_query_len, self.max_word_len])
        return tf.cast(word_ids, tf.int32), tf.cast(char_ids, tf.int32)


def build_vocabulary(
    queries,
    training_queries,
    vectors_path=None,
    vectors_format="auto",
    cache_dir=None,
    word2vec_dim=300,
    min_char_count=5,
    seed=0,
):
    """Builds the vocabulary and word vectors from raw queries (docs/model.md 1.3, 1.4).

    Words and characters are counted over `queries` (the authors count all splits; pass only the
    training queries for a train-only vocabulary). Word ids 2.. go to the counted words that have a
    vector, most frequent first (ties in order of first occurrence); char ids 2.. to characters seen
    at least `min_char_count` times, most frequent first.

    Without `vectors_path`, vectors come from a Word2Vec model trained on `training_queries`
    (`train_word2vec`, `word2vec_dim` wide), so words absent from the training queries are UNK.
    """
    word_counts, char_counts = count_tokens(tokenize_to_lists(queries))
    candidates = [word for word, _ in word_counts.most_common()]
    if vectors_path:
        words, vectors = word_vectors.load_word_vectors(vectors_path, candidates, vectors_format, cache_dir)
    else:
        training_tokens = tokenize_to_lists(training_queries)
        logging.warning(
            "No word vectors file given: training Word2Vec (dim %d, seed %d) on %d training queries",
            word2vec_dim,
            seed,
            len(training_tokens),
        )
        keyed_vectors = word_vectors.train_word2vec(training_tokens, word2vec_dim, seed)
        words, vectors = word_vectors.keyed_vectors_rows(keyed_vectors, candidates)
    chars = [char for char, count in char_counts.most_common() if count >= min_char_count]
    logging.info("Vocabulary: %d of %d words have vectors; %d chars", len(words), len(candidates), len(chars))
    return Vocabulary(tuple(words), tuple(chars), vectors)
