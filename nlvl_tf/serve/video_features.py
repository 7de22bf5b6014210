"""A video file's features from an extractor SavedModel (experiments/export_extractor.py), computed once per video.

Features are cached by the file's content (SHA-256) and the extractor (its preset and weights, from its metadata):
in memory (the last `memory_entries` videos) and, unless `cache_dir` is None, on disk as
<cache_dir>/<content sha256>-<extractor key>.npz, so a later process asking about the same video skips decoding and
extraction too. A file's hash is remembered while its path, size and modification time stay the same, so asking
again about an unchanged file does not read it again.
"""

import collections
import hashlib
import json
import os
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf
from absl import logging

from nlvl_tf import errors
from nlvl_tf.video import extraction, weights

DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "nlvl_tf", "video_features")


class VideoFeaturizer:
    """Video file -> (features float32 [rows, D], duration in seconds), through a loaded extractor SavedModel.

    `last` describes the latest call: {"cached": "memory" | "disk" | False, "seconds": ...}.
    """

    def __init__(self, extractor_dir, cache_dir=DEFAULT_CACHE_DIR, memory_entries=16):
        if not os.path.isfile(os.path.join(extractor_dir, "saved_model.pb")):
            raise errors.NotFoundError(f"--extractor={extractor_dir}: no SavedModel (saved_model.pb) there")
        self._extractor = tf.saved_model.load(extractor_dir)
        if "metadata" not in self._extractor.signatures or "crop_features" not in self._extractor.signatures:
            raise errors.InputError(
                f"{extractor_dir} is a SavedModel but not an extractor export (export_extractor.py)"
            )
        self.metadata = json.loads(self._extractor.signatures["metadata"]()["metadata"].numpy().decode("utf-8"))
        self.feature_dim = int(self._extractor.signatures["crop_features"].structured_outputs["features"].shape[-1])
        self.key = hashlib.sha256(json.dumps(self.metadata, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        self.cache_dir = cache_dir
        self._memory = collections.OrderedDict()
        self._memory_entries = memory_entries
        self._hashes = {}
        self._lock = threading.Lock()  # one extraction at a time: they are CPU-bound, and a repeat waits for the first
        self.last = {}

    def __call__(self, path):
        """(features [rows, D], duration s) of the video file at `path`."""
        started = time.perf_counter()
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise errors.NotFoundError(f"{path}: no such video file")
        with self._lock:
            content = self._content_hash(path)
            cached = "memory"
            found = self._memory.get(content)
            if found is None:
                found, cached = self._read_disk(content), "disk"
            if found is None:
                video = extraction.features_from_video(path, self._extractor)
                found, cached = (video.features, float(video.duration)), False
                self._write_disk(content, *found)
            self._memory[content] = found
            self._memory.move_to_end(content)
            while len(self._memory) > self._memory_entries:
                self._memory.popitem(last=False)
        self.last = {"cached": cached, "seconds": time.perf_counter() - started}
        return found

    def _content_hash(self, path):
        status = os.stat(path)
        identity = (os.path.realpath(path), status.st_size, status.st_mtime_ns)
        if identity not in self._hashes:
            if len(self._hashes) > 1024:
                self._hashes.clear()
            self._hashes[identity] = weights.sha256_of_files([path])
        return self._hashes[identity]

    def _cache_path(self, content):
        return os.path.join(self.cache_dir, f"{content}-{self.key}.npz")

    def _read_disk(self, content):
        if self.cache_dir is None or not os.path.isfile(self._cache_path(content)):
            return None
        try:
            with np.load(self._cache_path(content)) as stored:
                return stored["features"].astype(np.float32), float(stored["duration"])
        except (OSError, ValueError, KeyError):  # a damaged entry is recomputed and rewritten
            return None

    def _write_disk(self, content, features, duration):
        """Stores an entry whole (written aside, then renamed). A cache that cannot be written (read-only, full) costs
        only the next process's extraction: it is skipped with a warning, not reported as the video's failure."""
        if self.cache_dir is None:
            return
        partial = None
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            handle, partial = tempfile.mkstemp(suffix=".npz.partial", dir=self.cache_dir)
            with os.fdopen(handle, "wb") as file:
                np.savez(file, features=features, duration=np.float64(duration))
            os.replace(partial, self._cache_path(content))
        except OSError as error:
            logging.warning("video features not cached in %s: %s", self.cache_dir, error)
            if partial is not None and os.path.exists(partial):
                os.remove(partial)
