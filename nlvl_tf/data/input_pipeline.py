"""From TFDS video examples to model batches (docs/internals.md, "The batch").

A split is read once by `SplitData.from_videos`: each video's features are resampled to at most n
rows (`features.resample`) and stored once, back to back in one [R, D] table shared by all queries
of the video (TACoS has ~130 queries per video); each (video, query, moment) becomes a record that
points at its video, with its span labels (`labels.time_to_index`) computed once. `train_batches`
and `eval_batches` then only gather: a batch of record ids becomes a batch dict with the features
gathered from the table and zero-padded, the queries encoded by `text.QueryEncoder`, and the
highlight labels from `labels.highlight_labels`.

Input: a tf.data.Dataset of videos as TFDS builders yield them (the feature spec of tfds_builders/README.md):
{video_id, duration, features [L, D], annotations: {query, start, end[, moment_valid][, annotated][, ...]}}; when
`moment_valid` is absent it is derived as start < end. `annotated` false marks a query released without times (the
Ego4D test split): it is never trained on and not scored, only predicted. Any other annotation field (Ego4D's
annotation_uid, query_idx, ...) is carried per record into `SplitData.record_fields` and `Record.fields`, for
predictions and submission files.

Options come from config.data (see `nlvl_tf.configs`: lengths, labels, bucketing, vocabulary); batch sizes and the
seed are arguments, since training and evaluation use different ones.
"""

import dataclasses
import math
import types
import typing

import numpy as np
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.data import features as features_lib
from nlvl_tf.data import labels, text

# Memory bound of one labels.time_to_index call: records x n x n IoU cells.
_LABEL_CELLS_PER_CALL = 1 << 22


# Annotation fields the pipeline reads itself; any other is carried along as a record field.
_ANNOTATION_KEYS = ("query", "start", "end", "moment_valid", "annotated")


class Record(typing.NamedTuple):
    """One evaluation record, for predictions files. `fields`: the dataset's extra annotation fields, decoded
    (bytes to str, numpy scalars to Python)."""

    video_id: str
    query: str
    duration: float
    start_time: float
    end_time: float
    moment_valid: bool
    annotated: bool = True
    fields: typing.Mapping[str, typing.Any] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class SplitData:
    """One split, resampled and labelled once: what batches are gathered from.

    Video arrays [V]: video_id (bytes), duration (float64 seconds), video_length (N <= n, int32),
    video_row (int64, the video's first row in `features`). `features`: float32 [R, D], the videos'
    resampled rows back to back, in a non-trainable tf.Variable on the host CPU. Record arrays [Q],
    in the dataset's order: record_video (index into the video arrays), query (bytes), start_time,
    end_time (float64 seconds, as stored: docs/metrics.md), moment_valid (bool), annotated (bool: false for a query
    without times), start_index, end_index (int32 span labels). `record_fields`: {name: [Q] array} of the dataset's
    extra annotation fields.
    """

    max_video_len: int
    features: tf.Variable
    video_id: np.ndarray
    duration: np.ndarray
    video_length: np.ndarray
    video_row: np.ndarray
    record_video: np.ndarray
    query: np.ndarray
    start_time: np.ndarray
    end_time: np.ndarray
    moment_valid: np.ndarray
    start_index: np.ndarray
    end_index: np.ndarray
    annotated: np.ndarray
    record_fields: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_records(self):
        return len(self.record_video)

    @property
    def feature_dim(self):
        return int(self.features.shape[-1])

    @classmethod
    def from_videos(cls, videos, data_config):
        """Reads a dataset of TFDS video examples once (resampling, labels); see the module docstring."""
        if tf.distribute.has_strategy():
            raise errors.InputError(
                "input pipeline: build SplitData outside strategy.scope() (its feature table, a "
                "variable, would be mirrored to every replica)"
            )
        n = data_config.max_video_len
        include_last = data_config.resample_include_last

        def resample(video):
            return {**video, "features": features_lib.resample(video["features"], n, include_last)}

        resampled = videos.map(resample, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        columns, records, fields = _collect(resampled.as_numpy_iterator())
        video_length = np.array([len(rows) for rows in columns["features"]], np.int32)
        duration = np.array(columns["duration"], np.float64)
        record_video = records["record_video"]
        start_index, end_index = _span_labels(
            records["start_time"],
            records["end_time"],
            duration[record_video],
            video_length[record_video],
            data_config.label_method,
            n,
        )
        return cls(
            max_video_len=n,
            features=_host_table(np.concatenate(columns["features"])),
            video_id=np.array(columns["video_id"], dtype=object),
            duration=duration,
            video_length=video_length,
            video_row=np.concatenate([[0], np.cumsum(video_length[:-1], dtype=np.int64)]),
            record_video=record_video.astype(np.int32),
            query=records["query"].astype(object),
            start_time=records["start_time"].astype(np.float64),
            end_time=records["end_time"].astype(np.float64),
            moment_valid=records["moment_valid"].astype(bool),
            start_index=start_index,
            end_index=end_index,
            annotated=records["annotated"].astype(bool),
            record_fields=fields,
        )


def _collect(videos):
    """Per-video lists (video_id, duration, features), per-record arrays and the extra annotation fields' arrays, from
    numpy examples.

    Videos without annotations are left out: no record would point at them.
    """
    columns = {key: [] for key in ("video_id", "duration", "features")}
    records = {key: [] for key in ("record_video", "query", "start_time", "end_time", "moment_valid", "annotated")}
    fields = {}
    for video in videos:
        annotations = video["annotations"]
        count = len(annotations["query"])
        if count == 0:
            continue
        _check_video(video, columns["features"][0].shape[1] if columns["features"] else None)
        records["record_video"].append(np.full(count, len(columns["video_id"])))
        records["query"].append(annotations["query"])
        records["start_time"].append(annotations["start"])
        records["end_time"].append(annotations["end"])
        records["moment_valid"].append(annotations.get("moment_valid", annotations["start"] < annotations["end"]))
        records["annotated"].append(annotations.get("annotated", np.ones(count, bool)))
        for key, values in annotations.items():
            if key not in _ANNOTATION_KEYS:
                fields.setdefault(key, []).append(values)
        for key in columns:
            columns[key].append(video[key])
    if not columns["video_id"]:
        raise errors.InputError("input pipeline: the dataset holds no video with annotations")
    records = {key: np.concatenate(parts) for key, parts in records.items()}
    return columns, records, {key: np.concatenate(parts) for key, parts in fields.items()}


def _host_table(rows):
    """The feature table as a non-trainable variable on the host CPU.

    A variable is captured by tf.data functions as a handle; a captured tensor would be copied into
    the serialized dataset graph every time an iterator is made or a strategy rebatches the
    dataset (seconds for a gigabyte table, and over protobuf's 2 GB limit for the larger datasets).
    """
    with tf.device("/cpu:0"):
        return tf.Variable(rows, trainable=False, dtype=tf.float32, name="video_feature_table")


def _check_video(video, feature_dim):
    """Refuses a video the labels or the feature table cannot take, naming it."""
    name = video["video_id"].decode("utf-8", errors="replace")
    if len(video["features"]) == 0:
        raise errors.InputError(f"input pipeline: video {name!r} has no feature rows")
    if not video["duration"] > 0:
        raise errors.InputError(f"input pipeline: video {name!r} has duration {video['duration']}, expected > 0")
    if not np.isfinite(video["features"]).all():
        raise errors.InputError(f"input pipeline: video {name!r} has NaN or Inf features")
    if feature_dim is not None and video["features"].shape[1] != feature_dim:
        raise errors.InputError(
            f"input pipeline: video {name!r} has {video['features'].shape[1]}-d features, "
            f"the videos before it {feature_dim}-d"
        )


def _span_labels(start_time, end_time, duration, length, method, max_video_len):
    """labels.time_to_index over all records, in chunks that bound the records x n x n IoU grid."""
    chunk = max(1, _LABEL_CELLS_PER_CALL // (max_video_len * max_video_len))
    start_index, end_index = [], []
    for first in range(0, len(start_time), chunk):
        part = slice(first, first + chunk)
        start, end = labels.time_to_index(start_time[part], end_time[part], duration[part], length[part], method)
        start_index.append(start.numpy())
        end_index.append(end.numpy())
    return np.concatenate(start_index), np.concatenate(end_index)


def bucket_bounds(max_video_len):
    """The padded lengths of length bucketing: n/4, n/2 and n, rounded up."""
    return sorted({math.ceil(max_video_len / 4), math.ceil(max_video_len / 2), max_video_len})


def _batch_plan(data, data_config, order, batch_size, drop_remainder):
    """Record ids of each batch, in order, and the length each batch is padded to.

    Without length bucketing the batches are consecutive slices of `order`, padded to n. With it,
    the records of each bucket (in `order`) are batched apart, bucket after bucket.
    """
    n = data.max_video_len
    if data_config.length_bucketing:
        bounds = bucket_bounds(n)
        bucket = np.searchsorted(bounds, data.video_length[data.record_video[order]])
        groups = [(order[bucket == b], bound) for b, bound in enumerate(bounds)]
    else:
        groups = [(order, n)]
    plan = []
    for members, pad_length in groups:
        stop = len(members) - len(members) % batch_size if drop_remainder else len(members)
        plan.extend((members[i : i + batch_size], pad_length) for i in range(0, stop, batch_size))
    return plan


def train_batches(data, encoder, data_config, batch_size, seed, epoch):
    """The training batches of one epoch, shuffled with a seed derived from (seed, epoch).

    The same (seed, epoch) gives the same batches in every run; every epoch has its own order. With
    length bucketing, the batches themselves are shuffled too.

    Args:
        data: SplitData of the training split.
        encoder: text.QueryEncoder.
        data_config: config.data.
        batch_size: the global batch size; seed: config.seed; epoch: int >= 0.
    Returns:
        tf.data.Dataset of batch dicts (docs/internals.md), prefetched.
    """
    plan = _train_plan(data, data_config, batch_size, seed, epoch)
    return _dataset(data, encoder, data_config, plan, batch_size if data_config.drop_remainder else None)


def num_train_batches(data, data_config, batch_size):
    """Batches in every training epoch (the same for all epochs: shuffling moves records, not bucket sizes)."""
    return len(_train_plan(data, data_config, batch_size, seed=0, epoch=0))


def _train_plan(data, data_config, batch_size, seed, epoch):
    rng = np.random.default_rng((seed, epoch))
    records = np.flatnonzero(trainable_records(data, data_config))
    plan = _batch_plan(data, data_config, rng.permutation(records), batch_size, data_config.drop_remainder)
    return [plan[i] for i in rng.permutation(len(plan))]


def trainable_records(data, data_config):
    """bool [Q]: the records training uses. Never those without times (`annotated` false); with
    `skip_invalid_moments`, not those whose moment is empty; with `min_train_moment_seconds` > 0, only moments longer
    than that (the Ego4D baseline's --remove_empty_queries_from train drops windows of at most 1/30 s)."""
    keep = data.annotated.copy()
    if data_config.skip_invalid_moments:
        keep &= data.moment_valid
    if data_config.min_train_moment_seconds > 0:
        keep &= data.end_time - data.start_time > data_config.min_train_moment_seconds
    return keep


def eval_batches(data, encoder, data_config, batch_size):
    """Every record of an evaluation split, in `eval_records` order, in batches of eval_batch_size."""
    return _dataset(data, encoder, data_config, _eval_plan(data, data_config, batch_size), None)


def eval_records(data, data_config):
    """The records of an evaluation split in the order `eval_batches` yields them, as `Record`s."""
    order = np.concatenate([ids for ids, _ in _eval_plan(data, data_config, max(data.num_records, 1))])
    video = data.record_video[order]
    return [
        Record(
            video_id=data.video_id[v].decode("utf-8"),
            query=data.query[r].decode("utf-8"),
            duration=float(data.duration[v]),
            start_time=float(data.start_time[r]),
            end_time=float(data.end_time[r]),
            moment_valid=bool(data.moment_valid[r]),
            annotated=bool(data.annotated[r]),
            fields=types.MappingProxyType({key: _python(values[r]) for key, values in data.record_fields.items()}),
        )
        for r, v in zip(order, video)
    ]


def _python(value):
    """A numpy value of a record field as plain Python: bytes -> str, numpy scalars -> int, float, bool."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def _eval_plan(data, data_config, batch_size):
    return _batch_plan(data, data_config, np.arange(data.num_records), batch_size, drop_remainder=False)


def _dataset(data, encoder, data_config, plan, static_batch_size):
    """tf.data pipeline of a batch plan: record ids -> batch dicts."""
    n = data.max_video_len
    extend = float(data_config.highlight_extend)
    record_ids = tf.RaggedTensor.from_row_lengths(
        np.concatenate([ids for ids, _ in plan]).astype(np.int32) if plan else np.zeros([0], np.int32),
        [len(ids) for ids, _ in plan],
    )
    pad_lengths = tf.constant([pad_length for _, pad_length in plan], tf.int32)
    columns = {
        "video_row": tf.constant(data.video_row),
        "record_video": tf.constant(data.record_video),
        "video_length": tf.constant(data.video_length),
        "video_id": tf.constant(data.video_id.astype(bytes)),
        "duration": tf.constant(data.duration),
        "query": tf.constant(data.query.astype(bytes)),
        "start_time": tf.constant(data.start_time),
        "end_time": tf.constant(data.end_time),
        "moment_valid": tf.constant(data.moment_valid),
        "start_index": tf.constant(data.start_index),
        "end_index": tf.constant(data.end_index),
    }
    padded_to_n = all(pad_length == n for _, pad_length in plan)

    def assemble(ids, pad_length):
        if static_batch_size:
            ids = tf.ensure_shape(ids, [static_batch_size])
        if padded_to_n:
            pad_length = n  # a Python int keeps the padded axes static
        video = tf.gather(columns["record_video"], ids)
        length = tf.gather(columns["video_length"], video)
        first_row = tf.gather(columns["video_row"], video)
        rows = tf.ragged.range(first_row, first_row + tf.cast(length, tf.int64))
        video_features = tf.gather(data.features, rows).to_tensor(shape=[ids.shape[0], n, data.feature_dim])
        start_index = tf.gather(columns["start_index"], ids)
        end_index = tf.gather(columns["end_index"], ids)
        query = tf.gather(columns["query"], ids)
        word_ids, char_ids = encoder(query)
        highlight = labels.highlight_labels(start_index, end_index, length, n, extend)
        return {
            "video_features": video_features[:, :pad_length],
            "video_length": length,
            "word_ids": word_ids,
            "char_ids": char_ids,
            "start_index": start_index,
            "end_index": end_index,
            "highlight": highlight[:, :pad_length],
            "duration": tf.gather(columns["duration"], video),
            "start_time": tf.gather(columns["start_time"], ids),
            "end_time": tf.gather(columns["end_time"], ids),
            "moment_valid": tf.gather(columns["moment_valid"], ids),
            "video_id": tf.gather(columns["video_id"], video),
            "query": query,
        }

    dataset = tf.data.Dataset.from_tensor_slices((record_ids, pad_lengths))
    return dataset.map(assemble, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def build_vocabulary(splits, config):
    """The vocabulary and word vectors of a dataset, from its splits' queries (text.build_vocabulary).

    Args:
        splits: mapping split name -> SplitData, training split first (word frequency ties go to the
            first occurrence, as in the authors' train, val, test count).
        config: the experiment config; reads config.data (train_split, vocabulary_splits, word vectors file,
            min_char_count), config.model.word_dim (the Word2Vec size without a vectors file) and config.seed.
    Returns:
        text.Vocabulary.
    """
    data_config = config.data
    if data_config.vocabulary_splits not in ("all", "train"):
        raise errors.InputError(
            f"config.data.vocabulary_splits must be 'all' or 'train', got {data_config.vocabulary_splits!r}"
        )
    train_split = data_config.train_split
    if train_split not in splits:
        raise errors.InputError(f"build_vocabulary: no split {train_split!r} among {list(splits)}")
    counted = list(splits.values()) if data_config.vocabulary_splits == "all" else [splits[train_split]]
    return text.build_vocabulary(
        queries=[query for data in counted for query in data.query],
        training_queries=list(splits[train_split].query),
        vectors_path=data_config.word_vectors_path or None,
        vectors_format=data_config.word_vectors_format,
        cache_dir=data_config.word_vectors_cache_dir or None,
        word2vec_dim=config.model.word_dim,
        min_char_count=data_config.min_char_count,
        seed=config.seed,
    )
