"""Tests of nlvl_tf.features: resampling against the authors' numpy code and a worked example."""

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.data import features


def authors_resample(visual_feature, max_num_clips, include_last=True):
    """The authors' `visual_feature_sampling` (docs/model.md 1.5); include_last=True drops its clip to L - 1."""
    num_clips = visual_feature.shape[0]
    if num_clips <= max_num_clips:
        return visual_feature
    idxs = np.arange(0, max_num_clips + 1, 1.0) / max_num_clips * num_clips
    idxs = np.round(idxs).astype(np.int32)
    if not include_last:
        idxs[idxs > num_clips - 1] = num_clips - 1
    new_visual_feature = []
    for i in range(max_num_clips):
        s_idx, e_idx = idxs[i], idxs[i + 1]
        if s_idx < e_idx:
            new_visual_feature.append(np.mean(visual_feature[s_idx:e_idx], axis=0))
        else:
            new_visual_feature.append(visual_feature[s_idx])
    return np.asarray(new_visual_feature)


def random_features(num_rows, dim=3, seed=0):
    return np.random.default_rng(seed).normal(size=(num_rows, dim)).astype(np.float32)


@pytest.mark.parametrize("include_last", [True, False])
@pytest.mark.parametrize(
    "num_rows, max_length",
    [(1, 4), (5, 8), (8, 8), (9, 8), (10, 4), (129, 128), (255, 128), (1000, 128), (4801, 600), (13, 5)],
)
def test_resample_matches_the_authors_numpy_code(num_rows, max_length, include_last):
    x = random_features(num_rows, seed=num_rows)
    got = features.resample(x, max_length, include_last=include_last).numpy()
    np.testing.assert_allclose(got, authors_resample(x, max_length, include_last), rtol=1e-5, atol=1e-6)


def test_short_sequences_are_kept_unchanged():
    x = random_features(7)
    for max_length in (7, 100):
        np.testing.assert_array_equal(features.resample(x, max_length).numpy(), x)


def test_worked_example_ten_rows_to_four():
    # b = round([0, 2.5, 5, 7.5, 10]) = [0, 2, 5, 8, 10]: bins {0,1}, {2,3,4}, {5,6,7}, {8,9}.
    x = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_allclose(features.resample(x, 4).numpy()[:, 0], [0.5, 3.0, 6.0, 8.5])
    # The authors clip b_4 to 9: the last bin is {8} and row 9 is lost.
    np.testing.assert_allclose(features.resample(x, 4, include_last=False).numpy()[:, 0], [0.5, 3.0, 6.0, 8.0])


@pytest.mark.parametrize("num_rows, max_length", [(9, 8), (10, 4), (300, 128), (1000, 300), (601, 600)])
def test_every_raw_row_is_in_exactly_one_bin(num_rows, max_length):
    # With one-hot rows, output[i, r] = 1 / |bin i| if row r is in bin i, else 0.
    got = features.resample(np.eye(num_rows, dtype=np.float32), max_length).numpy()
    assert got.shape == (max_length, num_rows)
    np.testing.assert_array_equal((got > 0).sum(axis=0), np.ones(num_rows))
    np.testing.assert_allclose(got.sum(axis=1), np.ones(max_length), rtol=1e-5)


def test_original_binning_loses_the_last_row():
    got = features.resample(np.eye(10, dtype=np.float32), 4, include_last=False).numpy()
    np.testing.assert_array_equal((got > 0).sum(axis=0), [1] * 9 + [0])


def test_resample_inside_a_dataset_with_unknown_lengths():
    sequences = [random_features(length, seed=length) for length in (3, 10, 50)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(sequences), output_signature=tf.TensorSpec([None, 3], tf.float32)
    ).map(lambda x: features.resample(x, 8))
    for got, x in zip(dataset.as_numpy_iterator(), sequences):
        np.testing.assert_allclose(got, authors_resample(x, 8), rtol=1e-5, atol=1e-6)


def test_resample_rejects_a_bad_max_length():
    with pytest.raises(ValueError, match="max_length"):
        features.resample(random_features(3), 0)


def test_pad_zero_fills_and_masks():
    x = random_features(3)
    padded, mask = features.pad(x, 5)
    np.testing.assert_array_equal(padded.numpy(), np.concatenate([x, np.zeros((2, 3), np.float32)]))
    np.testing.assert_array_equal(mask.numpy(), [True, True, True, False, False])
    assert padded.shape == (5, 3)


def test_pad_refuses_a_sequence_longer_than_the_length():
    with pytest.raises(tf.errors.InvalidArgumentError, match="more rows than the padded length"):
        features.pad(random_features(6), 5)


@pytest.mark.parametrize("include_last", [True, False])
@pytest.mark.parametrize("num_rows, max_length", [(5, 8), (8, 8), (23, 8), (40, 7)])
def test_resample_batch_equals_resample_and_pad_per_video(num_rows, max_length, include_last):
    """The exported model's batched resampling against the per-video functions, with lengths on both sides of n and
    NaN in the rows past each length (which the export lets callers leave unset)."""
    rng = np.random.default_rng(num_rows)
    lengths = np.array(
        sorted(
            {1, num_rows // 2 + 1, max_length - 1, max_length, max_length + 1, num_rows - 1, num_rows}
            & set(range(1, num_rows + 1))
        ),
        np.int32,
    )
    batch = rng.normal(size=(len(lengths), num_rows, 3)).astype(np.float32)
    for row, length in enumerate(lengths):
        batch[row, length:] = np.nan
    got, got_lengths = features.resample_batch(batch, lengths, max_length, include_last=include_last)
    for row, length in enumerate(lengths):
        want = features.resample(batch[row, :length], max_length, include_last=include_last)
        want_padded, _ = features.pad(want, max_length)
        assert got_lengths[row] == want.shape[0]
        np.testing.assert_allclose(got[row], want_padded, rtol=1e-6, atol=1e-6)
