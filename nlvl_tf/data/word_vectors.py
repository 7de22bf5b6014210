"""Pre-trained word vectors (GloVe text, word2vec text or binary, gensim KeyedVectors) and the Word2Vec fallback.

`load_word_vectors` reads the rows of the vocabulary's words from a vectors file and caches them, so a
multi-gigabyte GloVe file is read once. Without a vectors file, `train_word2vec` trains a gensim Word2Vec model on
the training queries (seeded, deterministic).
"""

import hashlib
import json
import os
import zlib

import numpy as np
from absl import logging

from nlvl_tf import errors

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
        raise errors.InputError(f"vectors_format must be one of {VECTOR_FORMATS}, got {vectors_format!r}")
    if not os.path.isfile(path):
        raise errors.NotFoundError(f"word vectors file not found: {path}")
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
                raise errors.InputError(
                    f"{path}, line {line_number}: expected 'word v1 v2 ...', got {line[:80]!r}"
                ) from None
            num_values = values.count(" ") + 1
            dim = dim or num_values
            if num_values < dim:
                raise errors.InputError(f"{path}, line {line_number}: {num_values} values, expected {dim}")
            if num_values > dim or key not in wanted or key in rows:
                continue  # a key with spaces, an unwanted word, or a repeated key (first one kept)
            try:
                rows[key] = np.array(values.split(" "), dtype=np.float32)
            except ValueError:
                raise errors.InputError(f"{path}, line {line_number}: non-numeric vector values for {key!r}") from None
    if dim is None:
        raise errors.InputError(f"{path}: empty word vectors file")
    return _stack_found(words, rows, dim)


def _read_with_gensim(path, words, vectors_format):
    from gensim.models import KeyedVectors  # noqa: PLC0415 (gensim is slow to import; only here)

    try:
        if vectors_format == "keyedvectors":
            keyed_vectors = KeyedVectors.load(path)
        else:
            keyed_vectors = KeyedVectors.load_word2vec_format(path, binary=vectors_format == "word2vec_binary")
    except (ValueError, EOFError, UnicodeDecodeError, OSError) as error:
        raise errors.InputError(f"cannot read {vectors_format} word vectors from {path}: {error}") from error
    return keyed_vectors_rows(keyed_vectors, words)


def keyed_vectors_rows(keyed_vectors, words):
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
