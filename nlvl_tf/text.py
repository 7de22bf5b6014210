"""Query text: tokenizer, vocabularies, query encoding and word vectors.

One tokenizer (`tokenize`, TensorFlow string ops only) serves training, vocabulary building and the
exported SavedModel, so a query is split the same way everywhere. It follows what the authors ran,
`nltk.word_tokenize(s.strip().lower())` (Punkt sentence splitting + NLTK's improved Treebank
tokenizer, spec 1.2), rewritten for RE2: lower-case (Unicode), punctuation split off, Treebank
contractions ("n't", "'s", "'re", "'ll", "'ve", "'m", "'d", "can not", "gon na"), `#` a token,
curly quotes their own tokens, a period that ends a sentence inside the query split off (what Punkt
sentence splitting does, except after a few abbreviations such as "mr."). Changing any rule changes
`TOKENIZER_VERSION`, which the export records.

Vocabulary (spec 1.3, 1.4): word ids 0 = PAD, 1 = UNK, 2.. = words that have a vector, by frequency;
char ids 0 = PAD, 1 = UNK, 2.. = chars seen at least `min_char_count` times. A `Vocabulary` is saved
as plain text files (`words.txt`, `chars.txt`, line number = id) plus `word_vectors.npy` (the rows of
ids 2..). `QueryEncoder` maps raw query strings to (word_ids, char_ids) with lookup tables built from
those files, so the same lookups run in tf.data and in the SavedModel (the files become its assets).

Word vectors: a GloVe text file, a word2vec text or binary file, or saved gensim KeyedVectors; the
rows of the vocabulary's words are cached so a multi-gigabyte GloVe file is read once. Without a
vectors file, a gensim Word2Vec model is trained on the training queries (seeded, deterministic).
"""

import collections
import dataclasses
import hashlib
import json
import os
import zlib

import numpy as np
import tensorflow as tf
from absl import logging

TOKENIZER_VERSION = 1

PAD_ID = 0
UNK_ID = 1
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

    Characters are counted once per character of every word occurrence (spec 1.4), as code points.
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
    """Words and characters with their ids, and the word vectors (spec 1.3, 1.4).

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


# ------------------------------------------------------------------------------------ word vectors

VECTOR_FORMATS = ("auto", "glove", "word2vec", "word2vec_binary", "keyedvectors")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "nlvl_tf", "word_vectors")


def load_word_vectors(path, words, vectors_format="auto", cache_dir=None):
    """Vectors of the given words from a pre-trained vectors file, cached after the first read.

    A word is kept iff it is a key of the file verbatim (the authors' rule: lower-cased tokens
    against cased GloVe keys). The result is cached under `cache_dir`, keyed by the file's path,
    size and modification time, the format and the word list, so the file is read once.

    Args:
        path: vectors file: "glove" text (no header; lines whose key holds spaces, as in
            glove.840B, are skipped), "word2vec" text (with a header line), "word2vec_binary", or
            "keyedvectors" (gensim `KeyedVectors.save`). "auto" picks by extension (.bin: binary,
            .kv/.model/.wv: keyedvectors) and else by the first line (two integers: word2vec).
        words: candidate words, in the order wanted.
        cache_dir: cache directory (default ~/.cache/nlvl_tf/word_vectors).
    Returns:
        (found_words: list of str in the order of `words`, vectors: float32 [len(found_words), dim]).
    Raises:
        FileNotFoundError: no such file. ValueError: unreadable file (the message names the file
        and, for text formats, the line).
    """
    if vectors_format not in VECTOR_FORMATS:
        raise ValueError(f"vectors_format must be one of {VECTOR_FORMATS}, got {vectors_format!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word vectors file not found: {path}")
    words = list(words)
    if vectors_format == "auto":
        vectors_format = _detect_format(path)
    cache_path = os.path.join(cache_dir or DEFAULT_CACHE_DIR, _cache_key(path, vectors_format, words) + ".npz")
    if os.path.isfile(cache_path):
        with np.load(cache_path, allow_pickle=False) as cached:
            logging.info("Word vectors of %d words from the cache %s", len(cached["words"]), cache_path)
            return cached["words"].tolist(), cached["vectors"]
    if vectors_format == "glove":
        found_words, vectors = _read_glove(path, words)
    else:
        found_words, vectors = _read_with_gensim(path, words, vectors_format)
    logging.info("Read %s: vectors for %d of %d words", path, len(found_words), len(words))
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    partial_path = cache_path + ".partial.npz"
    np.savez(partial_path, words=np.array(found_words, dtype=str), vectors=vectors)
    os.replace(partial_path, cache_path)
    return found_words, vectors


def _detect_format(path):
    extension = os.path.splitext(path)[1].lower()
    if extension == ".bin":
        return "word2vec_binary"
    if extension in (".kv", ".model", ".wv"):
        return "keyedvectors"
    with open(path, "rb") as f:
        first_line = f.readline().split()
    is_header = len(first_line) == 2 and all(field.isdigit() for field in first_line)
    return "word2vec" if is_header else "glove"


def _cache_key(path, vectors_format, words):
    stat = os.stat(path)
    identity = [os.path.abspath(path), stat.st_size, stat.st_mtime_ns, vectors_format, words]
    return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:32]


def _read_glove(path, words):
    """Streams a GloVe text file, parsing only the wanted words' lines.

    gensim's `load_word2vec_format(no_header=True)` would hold the whole file in memory (2.6 GB for
    glove.840B.300d) and fails on its keys that contain spaces (". . ." and the like).
    """
    wanted = set(words)
    rows = {}
    dim = None
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                key, values = line.rstrip("\n").rstrip(" ").split(" ", 1)
            except ValueError:
                raise ValueError(f"{path}, line {line_number}: expected 'word v1 v2 ...', got {line[:80]!r}") from None
            num_values = values.count(" ") + 1
            dim = dim or num_values
            if num_values < dim:
                raise ValueError(f"{path}, line {line_number}: {num_values} values, expected {dim}")
            if num_values > dim or key not in wanted or key in rows:
                continue  # a key with spaces, an unwanted word, or a repeated key (first one kept)
            try:
                rows[key] = np.array(values.split(" "), dtype=np.float32)
            except ValueError:
                raise ValueError(f"{path}, line {line_number}: non-numeric vector values for {key!r}") from None
    if dim is None:
        raise ValueError(f"{path}: empty word vectors file")
    return _stack_found(words, rows, dim)


def _read_with_gensim(path, words, vectors_format):
    from gensim.models import KeyedVectors  # noqa: PLC0415 (gensim is slow to import; only here)

    try:
        if vectors_format == "keyedvectors":
            keyed_vectors = KeyedVectors.load(path)
        else:
            keyed_vectors = KeyedVectors.load_word2vec_format(path, binary=vectors_format == "word2vec_binary")
    except (ValueError, EOFError, UnicodeDecodeError, OSError) as error:
        raise ValueError(f"cannot read {vectors_format} word vectors from {path}: {error}") from error
    return _keyed_vectors_rows(keyed_vectors, words)


def _keyed_vectors_rows(keyed_vectors, words):
    rows = {word: keyed_vectors[word] for word in words if word in keyed_vectors.key_to_index}
    return _stack_found(words, rows, keyed_vectors.vector_size)


def _stack_found(words, rows, dim):
    found = [word for word in words if word in rows]
    vectors = np.array([rows[word] for word in found], dtype=np.float32).reshape(len(found), dim)
    return found, vectors


def _stable_hash(text):
    """gensim's word-vector initialisation hash; Python's hash() changes with PYTHONHASHSEED."""
    return zlib.crc32(text.encode("utf-8"))


def train_word2vec(token_lists, dim, seed=0, min_count=1, epochs=5):
    """Trains gensim Word2Vec on tokenized queries, reproducibly (one worker, seeded, stable hash).

    Args:
        token_lists: list of lists of str (tokenized training queries).
        dim: vector size.
    Returns:
        gensim KeyedVectors.
    """
    from gensim.models import Word2Vec  # noqa: PLC0415

    model = Word2Vec(
        sentences=token_lists,
        vector_size=dim,
        min_count=min_count,
        seed=seed,
        workers=1,
        hashfxn=_stable_hash,
        epochs=epochs,
    )
    return model.wv


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
    """Builds the vocabulary and word vectors from raw queries (spec 1.3, 1.4).

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
        words, vectors = load_word_vectors(vectors_path, candidates, vectors_format, cache_dir)
    else:
        training_tokens = tokenize_to_lists(training_queries)
        logging.warning(
            "No word vectors file given: training Word2Vec (dim %d, seed %d) on %d training queries",
            word2vec_dim,
            seed,
            len(training_tokens),
        )
        keyed_vectors = train_word2vec(training_tokens, word2vec_dim, seed)
        words, vectors = _keyed_vectors_rows(keyed_vectors, candidates)
    chars = [char for char, count in char_counts.most_common() if count >= min_char_count]
    logging.info("Vocabulary: %d of %d words have vectors; %d chars", len(words), len(candidates), len(chars))
    return Vocabulary(tuple(words), tuple(chars), vectors)
