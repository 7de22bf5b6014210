"""`Localizer`, the Python API over an export: numpy features (or, with an extractor, video files) and strings in,
ranked moments in seconds out."""

import json
import os

import numpy as np
import tensorflow as tf
from google.protobuf import message

from nlvl_tf import errors
from nlvl_tf.serve import export
from nlvl_tf.serve import video_features as video_features_lib


class Localizer:
    """Loads an export and answers queries about videos: numpy in, plain Python out.

    >>> localizer = Localizer.load("/path/to/export")
    >>> localizer.predict(features, duration=31.5, queries=["a person opens the door."], top_k=3)
    [[{"start": 4.2, "end": 9.8, "score": 0.41}, ...]]
    >>> localizer = Localizer.load("/path/to/export", extractor="/path/to/extractor")
    >>> localizer.predict_video("clip.mp4", "a person opens the door.", top_k=3)
    [{"start": 4.2, "end": 9.8, "score": 0.41}, ...]
    """

    def __init__(self, loaded, metadata, featurizer=None):
        self._serve = loaded.signatures["serving_default"]
        self._loaded = loaded
        self.metadata = metadata
        self.featurizer = featurizer

    @classmethod
    def load(cls, export_dir, extractor=None, cache_dir=video_features_lib.DEFAULT_CACHE_DIR):
        """Loads an export; with `extractor` (an extractor export), `predict_video` answers about video files, whose
        features are cached in memory and in `cache_dir` (None: memory only), see `video_features`."""
        if not os.path.isdir(export_dir):
            raise errors.NotFoundError(f"no SavedModel directory at {export_dir}")
        try:
            loaded = tf.saved_model.load(export_dir)
        except (OSError, ValueError, IndexError, tf.errors.OpError, message.DecodeError) as error:
            reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
            raise errors.InputError(
                f"{export_dir}: not a readable SavedModel (partial or corrupt?): {reason}"
            ) from None
        if "metadata" not in loaded.signatures:
            raise errors.InputError(f"{export_dir} is a SavedModel but not an nlvl_tf export (no metadata signature)")
        metadata = json.loads(loaded.signatures["metadata"]()["metadata"].numpy().decode("utf-8"))
        featurizer = None
        if extractor is not None:
            featurizer = video_features_lib.VideoFeaturizer(extractor, cache_dir)
            if featurizer.feature_dim != metadata["feature_dim"]:
                raise errors.InputError(
                    f"the extractor {extractor} gives {featurizer.feature_dim}-d features but the model {export_dir} "
                    f"takes {metadata['feature_dim']}-d ones"
                )
        return cls(loaded, metadata, featurizer)

    @property
    def feature_dim(self):
        return self.metadata["feature_dim"]

    def predict(self, features, duration, queries, top_k=None):
        """Ranked moments for queries about one video or a batch of videos.

        Args:
            features: one video's features [T, D], or a list of such arrays (one per query).
            duration: the video's duration in seconds, or a list (one per video).
            queries: with one video, a string or a list of strings about it; with a list of videos, one string each.
            top_k: moments per query, at most the export's K (default K).
        Returns:
            For each query, a list of {"start", "end", "score"} dicts (seconds), best first; with one video and one
            string query, just that list.
        """
        top_k = self._check_top_k(top_k)
        single_query = isinstance(queries, str)
        videos, durations, query_list = self._as_batch(features, duration, queries)
        lengths = np.array([len(v) for v in videos], np.int32)
        padded = np.zeros((len(videos), lengths.max(), self.feature_dim), np.float32)
        for row, video in enumerate(videos):
            padded[row, : len(video)] = video
        outputs = self._serve(
            video_features=tf.constant(padded),
            video_length=tf.constant(lengths),
            duration=tf.constant(durations, tf.float32),
            query=tf.constant(query_list),
        )
        starts, ends, scores = (outputs[key].numpy() for key in export.SERVING_OUTPUTS)
        results = [
            [
                {"start": float(s), "end": float(e), "score": float(p)}
                for s, e, p in zip(starts[i, :top_k], ends[i, :top_k], scores[i, :top_k])
            ]
            for i in range(len(query_list))
        ]
        return results[0] if single_query else results

    def video_features(self, path):
        """(features [rows, D], duration s) of a video file, computed by the extractor once per video content."""
        if self.featurizer is None:
            raise errors.InputError(
                "this Localizer has no extractor: load it with Localizer.load(export_dir, extractor=X)"
            )
        return self.featurizer(path)

    def predict_video(self, path, queries, top_k=None):
        """`predict` on a video file: decoded and run through the extractor the first time, from the cache after."""
        features, duration = self.video_features(path)
        return self.predict(features, duration, queries, top_k)

    def _check_top_k(self, top_k):
        exported = self.metadata["top_k"]
        if top_k is None:
            return exported
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= exported:
            raise errors.InputError(f"top_k must be an int in [1, {exported}] (the export's K), got {top_k!r}")
        return top_k

    def _as_batch(self, features, duration, queries):
        """Validates the inputs and returns (list of [T, D] float32 arrays, durations, queries), one per query."""
        if isinstance(features, (list, tuple)):
            videos = [self._check_features(f, f"features[{i}]") for i, f in enumerate(features)]
            durations = list(duration) if isinstance(duration, (list, tuple, np.ndarray)) else None
            if durations is None or len(durations) != len(videos):
                raise errors.InputError(f"with {len(videos)} videos, duration must be a list of {len(videos)} numbers")
            if isinstance(queries, str) or len(queries) != len(videos):
                raise errors.InputError(f"with {len(videos)} videos, queries must be a list of {len(videos)} strings")
            query_list = list(queries)
        else:
            video = self._check_features(features, "features")
            query_list = [queries] if isinstance(queries, str) else list(queries)
            if not query_list:
                raise errors.InputError("queries is empty: give at least one query")
            videos, durations = [video] * len(query_list), [duration] * len(query_list)
        for index, value in enumerate(durations):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not np.isfinite(value)
                or value <= 0
            ):
                raise errors.InputError(f"duration must be a positive number of seconds, got {value!r} (video {index})")
        for index, query in enumerate(query_list):
            if not isinstance(query, str):
                raise errors.InputError(f"query {index} must be a string, got {type(query).__name__}")
            if not query.strip():
                raise errors.InputError(f"query {index} is empty")
            try:
                query.encode("utf-8")
            except UnicodeEncodeError as error:  # lone surrogates, e.g. undecodable bytes in a command line
                raise errors.InputError(
                    f"query {index} is not valid UTF-8 text ({error.reason} at character "
                    f"{error.start}: {query[error.start]!r})"
                ) from None
        return videos, np.asarray(durations, np.float64), query_list

    def _check_features(self, features, name):
        array = np.asarray(features)
        if array.ndim != 2 or array.shape[1] != self.feature_dim:
            raise errors.InputError(
                f"{name} must have shape [T, {self.feature_dim}] (the model's feature dimension), got "
                f"{list(array.shape)}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise errors.InputError(f"{name} must be floating point, got dtype {array.dtype}")
        if len(array) == 0:
            raise errors.InputError(f"{name} has no rows (T = 0)")
        if not np.all(np.isfinite(array)):
            raise errors.InputError(f"{name} contains NaN or Inf")
        return array.astype(np.float32)
