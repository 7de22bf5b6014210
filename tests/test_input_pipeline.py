"""Tests of nlvl_tf.input_pipeline on small in-memory datasets shaped like the TFDS builders' output."""

import math

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import configs
from nlvl_tf.data import input_pipeline, text


def video_dataset(videos, with_moment_valid=True):
    """A tf.data.Dataset of videos in the TFDS feature spec (tfds_builders/README.md), from plain dicts."""
    feature_dim = videos[0]["features"].shape[1]
    annotation_signature = {
        "query": tf.TensorSpec([None], tf.string),
        "start": tf.TensorSpec([None], tf.float64),
        "end": tf.TensorSpec([None], tf.float64),
    }
    if with_moment_valid:
        annotation_signature["moment_valid"] = tf.TensorSpec([None], tf.bool)

    def examples():
        for video in videos:
            start = np.array(video["start"], np.float64)
            end = np.array(video["end"], np.float64)
            annotations = {"query": video["query"], "start": start, "end": end}
            if with_moment_valid:
                annotations["moment_valid"] = start < end
            yield {
                "video_id": video["video_id"],
                "duration": np.float64(video["duration"]),
                "features": video["features"].astype(np.float32),
                "annotations": annotations,
            }

    signature = {
        "video_id": tf.TensorSpec([], tf.string),
        "duration": tf.TensorSpec([], tf.float64),
        "features": tf.TensorSpec([None, feature_dim], tf.float32),
        "annotations": annotation_signature,
    }
    return tf.data.Dataset.from_generator(examples, output_signature=signature)


def make_config(**overrides):
    """config.data with the worked examples' sizes (n = 4, M = 5, W = 3)."""
    data = configs.base_config().data
    data.update({"max_video_len": 4, "max_query_len": 5, "max_word_len": 3, **overrides})
    return data


def ramp(num_rows):
    """Features [[r, -r]] for row r: bin means are easy to work by hand."""
    rows = np.arange(num_rows, dtype=np.float32)
    return np.stack([rows, -rows], axis=1)


# Worked examples, n = 4.
# v1: 10 raw rows -> bins {0,1} {2,3,4} {5,6,7} {8,9} -> first feature 0.5, 3, 6, 8.5; N = 4, T = 5 s.
#   [1, 3] s = [0.8, 2.4] units: best IoU span is units [1, 3), labels (1, 2) (IoU 1.4 / 2.2).
#   [4, 6] s ends past the duration: clipped to [4, 5] s = [3.2, 4] units, labels (3, 3).
# v2: 3 raw rows (kept, padded with a zero row); N = 3, T = 3 s.
#   [1.5, 1.5] s has zero length: moment_valid False, labels (1, 1) (the unit holding 1.5 s).
#   [0, 3] s covers the video: labels (0, 2).
# v3: 4 raw rows, T = 8 s; [2, 5] s = [1, 2.5] units: labels (1, 2) (IoU 1.5 / 2 beats 1 / 1.5).
VIDEOS = [
    {
        "video_id": "v1",
        "duration": 5.0,
        "features": ramp(10),
        "query": ["A man opens the door.", "The man walks away"],
        "start": [1.0, 4.0],
        "end": [3.0, 6.0],
    },
    {
        "video_id": "v2",
        "duration": 3.0,
        "features": ramp(3) + 100.0,
        "query": ["a door", "A woman walks."],
        "start": [1.5, 0.0],
        "end": [1.5, 3.0],
    },
    {
        "video_id": "v3",
        "duration": 8.0,
        "features": ramp(4) - 50.0,
        "query": ["the woman opens a box"],
        "start": [2.0],
        "end": [5.0],
    },
]
EXPECTED_LENGTH = [4, 4, 3, 3, 4]
EXPECTED_FEATURES = [
    [[0.5, -0.5], [3.0, -3.0], [6.0, -6.0], [8.5, -8.5]],
    [[0.5, -0.5], [3.0, -3.0], [6.0, -6.0], [8.5, -8.5]],
    [[100.0, 100.0], [101.0, 99.0], [102.0, 98.0], [0.0, 0.0]],
    [[100.0, 100.0], [101.0, 99.0], [102.0, 98.0], [0.0, 0.0]],
    [[-50.0, -50.0], [-49.0, -51.0], [-48.0, -52.0], [-47.0, -53.0]],
]
EXPECTED_SPANS = [(1, 2), (3, 3), (1, 1), (0, 2), (1, 2)]


def brute_force_span(start, end, duration, length):
    """Spec 1.6 by a double loop: the (i, j) whose [i u, (j + 1) u) has the best IoU, ties first."""
    start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
    unit = duration / length
    best, best_iou = None, -1.0
    for i in range(length):
        for j in range(i, length):
            a, b = i * unit, (j + 1) * unit
            iou = max(0.0, min(b, end) - max(a, start)) / (max(b, end) - min(a, start))
            if iou > best_iou + 1e-9:
                best, best_iou = (i, j), iou
    return best


def highlight_reference(start_index, end_index, length, max_length, extend):
    """Spec 1.7: ones on [s - ext, e + ext] within [0, N - 1], ext = round(extend * (e - s + 1))."""
    ext = round(extend * (end_index - start_index + 1))
    row = np.zeros(max_length, np.float32)
    row[max(0, start_index - ext) : min(end_index + ext, length - 1) + 1] = 1.0
    return row


@pytest.fixture
def encoder(tmp_path):
    words = ("a", "man", "the", "door", "walks", ".", "woman", "opens")
    text.Vocabulary(words, ("a", "o", "e", "m", "n"), np.zeros((len(words), 2), np.float32)).save(str(tmp_path))
    return text.QueryEncoder(str(tmp_path), max_query_len=5, max_word_len=3)


@pytest.fixture
def split_data():
    return input_pipeline.SplitData.from_videos(video_dataset(VIDEOS), make_config())


def test_an_evaluation_batch_key_by_key(split_data, encoder):
    config = make_config(highlight_extend=0.5)
    batch = next(iter(input_pipeline.eval_batches(split_data, encoder, config, 8)))
    assert set(batch) == {
        "video_features", "video_length", "word_ids", "char_ids", "start_index", "end_index",
        "highlight", "duration", "start_time", "end_time", "moment_valid", "video_id", "query",
    }  # fmt: skip
    np.testing.assert_allclose(batch["video_features"].numpy(), EXPECTED_FEATURES, rtol=1e-6)
    np.testing.assert_array_equal(batch["video_length"].numpy(), EXPECTED_LENGTH)
    spans = list(zip(batch["start_index"].numpy().tolist(), batch["end_index"].numpy().tolist()))
    assert spans == EXPECTED_SPANS
    records = [(v["duration"], s, e) for v in VIDEOS for s, e in zip(v["start"], v["end"])]
    for (duration, start, end), length, span in zip(records, EXPECTED_LENGTH, EXPECTED_SPANS):
        if end > start:  # the brute force has no rule for empty moments
            assert brute_force_span(start, end, duration, length) == span
    np.testing.assert_array_equal(
        batch["highlight"].numpy(),
        [highlight_reference(s, e, n, 4, 0.5) for (s, e), n in zip(EXPECTED_SPANS, EXPECTED_LENGTH)],
    )
    # The 0.5 extension of a 2-unit span is round(1.0) = 1 unit on each side: v1 query 0 -> [0, 3].
    np.testing.assert_array_equal(batch["highlight"].numpy()[0], [1, 1, 1, 1])
    queries = [q for v in VIDEOS for q in v["query"]]
    word_ids, char_ids = encoder(tf.constant(queries))
    np.testing.assert_array_equal(batch["word_ids"].numpy(), word_ids.numpy())
    np.testing.assert_array_equal(batch["char_ids"].numpy(), char_ids.numpy())
    # "A man opens the door." -> a man opens the door (".", the 6th token, is truncated).
    np.testing.assert_array_equal(batch["word_ids"].numpy()[0], [2, 3, 9, 4, 5])
    np.testing.assert_allclose(batch["duration"].numpy(), [5.0, 5.0, 3.0, 3.0, 8.0])
    np.testing.assert_allclose(batch["start_time"].numpy(), [1.0, 4.0, 1.5, 0.0, 2.0])
    np.testing.assert_allclose(batch["end_time"].numpy(), [3.0, 6.0, 1.5, 3.0, 5.0])
    np.testing.assert_array_equal(batch["moment_valid"].numpy(), [True, True, False, True, True])
    assert batch["video_id"].numpy().tolist() == [b"v1", b"v1", b"v2", b"v2", b"v3"]
    assert batch["query"].numpy().tolist() == [q.encode() for q in queries]


def test_batch_dtypes_and_static_shapes(split_data, encoder):
    spec = input_pipeline.train_batches(split_data, encoder, make_config(), 2, 0, epoch=0).element_spec
    expected = {
        "video_features": (tf.float32, [2, 4, 2]),
        "video_length": (tf.int32, [2]),
        "word_ids": (tf.int32, [2, 5]),
        "char_ids": (tf.int32, [2, 5, 3]),
        "start_index": (tf.int32, [2]),
        "end_index": (tf.int32, [2]),
        "highlight": (tf.float32, [2, 4]),
        "duration": (tf.float64, [2]),
        "start_time": (tf.float64, [2]),
        "end_time": (tf.float64, [2]),
        "moment_valid": (tf.bool, [2]),
        "video_id": (tf.string, [2]),
        "query": (tf.string, [2]),
    }
    assert {key: (s.dtype, s.shape.as_list()) for key, s in spec.items()} == expected


def test_moment_valid_is_derived_when_the_dataset_lacks_it(split_data):
    derived = input_pipeline.SplitData.from_videos(video_dataset(VIDEOS, with_moment_valid=False), make_config())
    np.testing.assert_array_equal(derived.moment_valid, split_data.moment_valid)


def test_training_skips_invalid_moments_and_drops_the_remainder(split_data, encoder):
    batches = list(input_pipeline.train_batches(split_data, encoder, make_config(), 3, 0, 0))
    # 4 valid records (the zero-length "a door" is skipped): one batch of 3, the remainder dropped.
    assert [len(batch["query"]) for batch in batches] == [3]
    assert b"a door" not in batches[0]["query"].numpy()
    config = make_config(skip_invalid_moments=False, drop_remainder=False)
    kept = list(input_pipeline.train_batches(split_data, encoder, config, 3, 0, 0))
    assert sorted(len(batch["query"]) for batch in kept) == [2, 3]
    assert b"a door" in np.concatenate([batch["query"].numpy() for batch in kept])


def test_eval_records_follow_the_batches(split_data, encoder):
    config = make_config()
    records = input_pipeline.eval_records(split_data, config)
    batches = list(input_pipeline.eval_batches(split_data, encoder, config, 2))
    assert [len(b["query"]) for b in batches] == [2, 2, 1]  # evaluation never drops a record
    assert [r.query.encode() for r in records] == [q for b in batches for q in b["query"].numpy()]
    assert records[2] == input_pipeline.Record("v2", "a door", 3.0, 1.5, 1.5, False)
    assert records[1].end_time == 6.0 and records[1].duration == 5.0


def many_videos(num_videos=12, seed=0):
    rng = np.random.default_rng(seed)
    videos = []
    for index in range(num_videos):
        num_rows = int(rng.integers(2, 40))
        videos.append(
            {
                "video_id": f"video{index}",
                "duration": num_rows / 2.0,
                "features": rng.normal(size=(num_rows, 3)),
                "query": [f"query {index} {k}" for k in range(3)],
                "start": [0.0, 1.0, 0.5],
                "end": [1.0, 1.0 + num_rows / 4.0, num_rows / 2.0],
            }
        )
    return videos


def epoch_queries(data, encoder, config, epoch, seed=7):
    batches = input_pipeline.train_batches(data, encoder, config, 4, seed, epoch)
    return [q for batch in batches for q in batch["query"].numpy()]


def test_seeded_shuffle_is_reproducible_and_differs_across_epochs(encoder):
    config = make_config(max_video_len=16, drop_remainder=False)
    data = input_pipeline.SplitData.from_videos(video_dataset(many_videos()), config)
    rebuilt = input_pipeline.SplitData.from_videos(video_dataset(many_videos()), config)
    epoch0 = epoch_queries(data, encoder, config, 0)
    assert epoch0 == epoch_queries(rebuilt, encoder, config, 0)
    assert sorted(epoch0) == sorted(q.encode() for v in many_videos() for q in v["query"])
    epoch1 = epoch_queries(data, encoder, config, 1)
    assert epoch1 != epoch0 and sorted(epoch1) == sorted(epoch0)
    assert epoch_queries(data, encoder, config, 0, seed=8) != epoch0


def test_length_bucketing_pads_each_batch_to_its_bucket(encoder):
    config = make_config(max_video_len=16, drop_remainder=False, length_bucketing=True)
    data = input_pipeline.SplitData.from_videos(video_dataset(many_videos()), config)
    assert input_pipeline.bucket_bounds(16) == [4, 8, 16]
    reference = next(iter(input_pipeline.eval_batches(data, encoder, make_config(max_video_len=16), 64)))
    features_of = {q: f for q, f in zip(reference["query"].numpy(), reference["video_features"].numpy())}
    seen = []
    for batch in input_pipeline.train_batches(data, encoder, config, 4, 0, 0):
        bound = batch["video_features"].shape[1]
        lengths = batch["video_length"].numpy()
        assert bound in (4, 8, 16) and batch["highlight"].shape[1] == bound
        previous_bound = {4: 0, 8: 4, 16: 8}[bound]
        assert np.all((lengths > previous_bound) & (lengths <= bound))
        for query, features in zip(batch["query"].numpy(), batch["video_features"].numpy()):
            np.testing.assert_array_equal(features, features_of[query][:bound])
            seen.append(query)
    assert sorted(seen) == sorted(features_of)


def test_length_bucketing_is_refused_for_vslnet_l():
    config = configs.base_config()
    config.data.length_bucketing = True
    with pytest.raises(ValueError, match="length_bucketing is not available for vslnet_l"):
        configs.apply_variant(config, {"l": {"model": {"name": "vslnet_l", "clip_lengths": (64,)}}}, "l")
        configs.check(config)


def test_authors_resampling_option_reaches_the_batch(encoder):
    config = make_config(resample_include_last=False)
    data = input_pipeline.SplitData.from_videos(video_dataset(VIDEOS[:1]), config)
    batch = next(iter(input_pipeline.eval_batches(data, encoder, config, 8)))
    np.testing.assert_allclose(batch["video_features"].numpy()[0, :, 0], [0.5, 3.0, 6.0, 8.0])


def test_vocabulary_from_all_splits_or_train_only(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("a 1 0\nman 0 1\ndoor 1 1\nwoman 2 2\nbox 3 3\n", encoding="utf-8")
    train = input_pipeline.SplitData.from_videos(video_dataset(VIDEOS[:2]), make_config())
    test = input_pipeline.SplitData.from_videos(video_dataset(VIDEOS[2:]), make_config())
    common = {"word_vectors_path": str(glove), "word_vectors_cache_dir": str(tmp_path / "cache")}
    config = configs.base_config()
    config.data.update(common)
    every = input_pipeline.build_vocabulary({"train": train, "test": test}, config)
    assert every.words == ("a", "man", "door", "woman", "box")
    config.data.vocabulary_splits = "train"
    only_train = input_pipeline.build_vocabulary({"train": train, "test": test}, config)
    assert only_train.words == ("a", "man", "door", "woman")
    np.testing.assert_array_equal(only_train.vectors, [[1, 0], [0, 1], [1, 1], [2, 2]])


def test_a_video_without_features_is_named():
    broken = [*VIDEOS, {**VIDEOS[2], "video_id": "empty", "features": np.zeros((0, 2))}]
    with pytest.raises(ValueError, match="'empty' has no feature rows"):
        input_pipeline.SplitData.from_videos(video_dataset(broken), make_config())


def test_labels_follow_the_per_video_length_not_n():
    # 3 raw rows, n = 4: N = 3 units of 1 s. [0.9, 2.1] s -> best span units [1, 2), IoU 1 / 1.2.
    video = {**VIDEOS[1], "query": ["q"], "start": [0.9], "end": [2.1]}
    data = input_pipeline.SplitData.from_videos(video_dataset([video]), make_config())
    assert (data.start_index[0], data.end_index[0]) == brute_force_span(0.9, 2.1, 3.0, 3) == (1, 1)
    assert math.isclose(data.duration[0], 3.0)


def test_split_data_is_refused_inside_a_strategy_scope():
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        with pytest.raises(ValueError, match=r"outside strategy.scope\(\)"):
            input_pipeline.SplitData.from_videos(video_dataset(VIDEOS), make_config())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"duration": 0.0}, "'bad' has duration 0.0, expected > 0"),
        ({"duration": -2.0}, "'bad' has duration -2.0, expected > 0"),
        ({"features": np.where(ramp(4) == 2.0, np.nan, ramp(4))}, "'bad' has NaN or Inf features"),
        ({"features": np.where(ramp(40) == 7.0, np.inf, ramp(40))}, "'bad' has NaN or Inf features"),  # resampled too
    ],
)
def test_a_video_the_model_cannot_take_is_named(change, message):
    broken = [*VIDEOS, {**VIDEOS[2], "video_id": "bad", **change}]
    with pytest.raises(ValueError, match=message):
        input_pipeline.SplitData.from_videos(video_dataset(broken), make_config())


def test_a_one_row_video_is_one_unit_long(encoder):
    video = {
        "video_id": "one",
        "duration": 2.5,
        "features": ramp(1) + 7.0,
        "query": ["a man", "the door"],
        "start": [0.5, 0.0],
        "end": [1.0, 2.5],
    }
    data = input_pipeline.SplitData.from_videos(video_dataset([video]), make_config())
    assert data.video_length.tolist() == [1]
    np.testing.assert_array_equal(data.start_index, [0, 0])
    np.testing.assert_array_equal(data.end_index, [0, 0])
    batch = next(iter(input_pipeline.eval_batches(data, encoder, make_config(), 8)))
    np.testing.assert_array_equal(batch["video_features"][0], [[7.0, 7.0], [0, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(batch["highlight"], [[1, 0, 0, 0], [1, 0, 0, 0]])
