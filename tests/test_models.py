"""Whole models: serialization, padding invariance, gradients, learning, parameter count, VSLNet-L clip logic."""

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import configs
from nlvl_tf.data import labels
from nlvl_tf.model import vslnet
from tests.layers import checks

RNG = np.random.default_rng(7)
VOCABULARY, CHARS = 22, 12  # word ids 0 .. 21: PAD, UNK and 20 words with vectors
VIDEO_LENGTHS = [24, 13, 5]
QUERY_LENGTHS = [6, 3, 1]


def small_config(model="vslnet", **overrides):
    """A small config.model (the tests' videos have n = 24 positions and 12-d features)."""
    config = ml_collections.ConfigDict(
        dict(
            name=model,
            video_feature_dim=12,
            word_dim=8,
            hidden_size=16,
            num_heads=2,
            kernel_size=3,
            num_conv_layers=2,
            dropout=0.0,
            char_dim=4,
            char_filters=(2, 2, 2, 2),
            max_position=48,
        )
    )
    if model == "vslnet_l":
        config.clip_lengths = (6, 8, 12)
    config.update(overrides)
    return config


def run_config(model="vslnet", max_query_len=6, max_word_len=5, **model_overrides):
    """A whole experiment config around `small_config`: n = 24, its data sizes, resolved."""
    config = configs.base_config()
    config.model = small_config(model, **model_overrides)
    config.data.update(max_video_len=24, max_query_len=max_query_len, max_word_len=max_word_len, video_feature_dim=12)
    return config


def small_model(model="vslnet", **overrides):
    vectors = RNG.normal(size=(VOCABULARY - 2, 8)).astype("float32")
    return vslnet.build_model(small_config(model, **overrides), VOCABULARY, CHARS, vectors)


def random_batch(video_length=24, query_length=6, word_length=5):
    batch_size = len(VIDEO_LENGTHS)
    features = RNG.normal(size=(batch_size, video_length, 12)).astype("float32")
    word_ids = np.zeros((batch_size, query_length), "int32")
    char_ids = np.zeros((batch_size, query_length, word_length), "int32")
    for row, length in enumerate(QUERY_LENGTHS):
        word_ids[row, :length] = RNG.integers(1, VOCABULARY, size=length)
        char_ids[row, :length, :3] = RNG.integers(1, CHARS, size=(length, 3))
    word_ids[0, 1] = 1  # an out-of-vocabulary word, so the UNK row is used
    starts = np.array([2, 4, 0])
    ends = np.array([20, 12, 3])
    highlight = np.stack(
        [labels.highlight_labels(s, e, n, video_length).numpy() for s, e, n in zip(starts, ends, VIDEO_LENGTHS)]
    )
    return {
        "video_features": features,
        "video_length": np.array(VIDEO_LENGTHS, "int32"),
        "word_ids": word_ids,
        "char_ids": char_ids,
        "start_index": starts,
        "end_index": ends,
        "highlight": highlight,
    }


def pad_batch(batch, video_length, query_length, word_length):
    """The same examples padded further, with noise in padded video rows and PAD ids elsewhere."""
    padded = dict(batch)
    padded["video_features"] = checks.pad_with_noise(batch["video_features"], video_length)
    padded["word_ids"] = np.pad(batch["word_ids"], ((0, 0), (0, query_length - batch["word_ids"].shape[1])))
    char_ids = batch["char_ids"]
    padded["char_ids"] = np.pad(
        char_ids, ((0, 0), (0, query_length - char_ids.shape[1]), (0, word_length - char_ids.shape[2]))
    )
    padded["highlight"] = np.pad(batch["highlight"], ((0, 0), (0, video_length - batch["highlight"].shape[1])))
    return padded


VARIANTS = {
    "vslbase": {},
    "vslnet": {},
    "vslnet_l": {},
    "vslbase_bilstm_cat": {"encoder_type": "bilstm", "attention_type": "cat"},
    "vslnet_paper_variant": {"use_char_cnn": False, "highlight_projection": False, "predictor_head": "linear"},
}


def _model_for(variant):
    return small_model(variant.split("_")[0] if variant != "vslnet_l" else "vslnet_l", **VARIANTS[variant])


@pytest.mark.parametrize("variant", VARIANTS)
def test_serialization_round_trip(variant):
    model = _model_for(variant)
    batch = random_batch()
    expected = model(batch)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(clone) is type(model) and clone.get_config() == model.get_config()
    clone(batch)
    clone.set_weights(model.get_weights())
    for key, value in clone(batch).items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6, err_msg=key)


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_to_twice_the_length_changes_no_valid_output(variant):
    model = _model_for(variant)
    batch = random_batch()
    short = model(batch)
    long = model(pad_batch(batch, 48, 12, 9))
    if variant == "vslnet_l":
        for key in ("start_logits", "end_logits", "highlight_logits"):
            for scale in range(3):
                checks.assert_valid_positions_equal(short[key][:, scale], long[key][:, scale], VIDEO_LENGTHS)
        clip_mask = short["clip_mask"].numpy()
        np.testing.assert_array_equal(long["clip_mask"].numpy()[:, :, : clip_mask.shape[2]], clip_mask)
        assert not long["clip_mask"].numpy()[:, :, clip_mask.shape[2] :].any()
        np.testing.assert_allclose(
            np.where(clip_mask, long["nil_logits"][:, :, : clip_mask.shape[2]], 0),
            np.where(clip_mask, short["nil_logits"], 0),
            atol=1e-5,
        )
    else:
        for key in ("start_logits", "end_logits", "highlight_logits"):
            if key in short:
                checks.assert_valid_positions_equal(short[key], long[key], VIDEO_LENGTHS)
    for key in ("span_loss", "highlight_loss", "nil_loss"):
        losses_short, losses_long = (
            model.compute_losses(batch, short),
            model.compute_losses(pad_batch(batch, 48, 12, 9), long),
        )
        if key in losses_short:
            np.testing.assert_allclose(losses_long[key], losses_short[key], rtol=1e-5)


@pytest.mark.parametrize("variant", ["vslbase", "vslnet", "vslnet_l"])
def test_gradients_reach_every_trainable_weight_and_never_the_word_vectors(variant):
    model = _model_for(variant)
    batch = random_batch()
    frozen = model.word_embedding.pretrained_vectors
    assert all(v is not frozen for v in model.trainable_variables)
    with tf.GradientTape() as tape:
        loss = model.compute_losses(batch, model(batch, training=True))["loss"]
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    # The output biases of the start/end heads shift every logit of a softmax equally, so their gradient is exactly
    # zero up to rounding (a dead parameter in the authors' model too).
    softmax_invariant = ("start_head_output/bias", "end_head_output/bias")
    no_gradient = [
        v.path
        for v, g in zip(model.trainable_variables, grads)
        if not v.path.endswith(softmax_invariant) and not np.any(tf.convert_to_tensor(g).numpy())
    ]
    assert not no_gradient
    np.testing.assert_array_equal(frozen.numpy(), model.word_embedding.pretrained_vectors.numpy())


@pytest.mark.parametrize("variant", ["vslbase", "vslnet", "vslnet_l"])
def test_a_few_optimizer_steps_lower_the_loss_on_a_fixed_batch(variant):
    model = _model_for(variant)
    batch = random_batch()
    optimizer = keras.optimizers.Adam(3e-3)
    frozen_before = model.word_embedding.pretrained_vectors.numpy().copy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = model.compute_losses(batch, model(batch, training=True))["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    first = float(step())
    for _ in range(9):
        last = float(step())
    assert last < 0.8 * first, (first, last)
    np.testing.assert_array_equal(model.word_embedding.pretrained_vectors.numpy(), frozen_before)


def test_vslnet_parameter_count_matches_the_authors_tf_model():
    """d=128, 8 heads, kernel 7, n=128, word dim 300, video dim 1024, 1,300 words, 40 characters: 781,769.

    Per component (TF, docs/model.md 2.6): video projection 131,200; query projection 51,328; char CNN 15,100 +
    char table 39 x 50 = 1,950 (PAD row constant); UNK 300; encoder 153,600; CQA 65,920; pooling + concat 33,024;
    highlight 129; predictor 329,218. The authors' PyTorch port has 782,971 = 781,769 + 50 (trainable char PAD row)
    + 128 (bias of the CQA output layer) + 2 x 512 (PyTorch's second LSTM bias vector); we follow the TF model, which
    made the paper's numbers. The frozen GloVe rows are not trainable.
    """
    config = configs.base_config().model
    config.update(video_feature_dim=1024, max_position=128)  # n = 128
    model = vslnet.build_model(config, 1302, 40, np.zeros((1300, 300), "float32"))
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == 781_769
    parts = {
        "video_projection": 131_200,
        "query_projection": 51_328,
        "char_cnn": 15_100 + 1_950,
        "feature_encoder": 153_600,
        "cross_attention": 65_920,
        "highlighting": 32_896 + 129,
        "sentence_pooling": 128,
        "span_predictor": 329_218,
    }
    for name, count in parts.items():
        assert getattr(model, name).count_params() == count, name
    frozen = [v for v in model.non_trainable_variables if v.dtype == "float32"]
    assert [(v.path.split("/")[-1], tuple(v.shape)) for v in frozen] == [("pretrained_vectors", (1300, 300))]


def test_vslnet_l_clip_pass_equals_running_each_clip_separately():
    """Batched split-and-concat vs an explicit loop over clips with the same layers (one scale)."""
    model = small_model("vslnet_l", clip_lengths=(8,))
    batch = random_batch()
    outputs = model(batch)
    video, video_mask, query, query_mask = model.embed(batch)
    sentence = model.sentence_pooling(query, query_mask)
    clip_features, clip_logits = [], []
    for k in range(3):
        clip, clip_mask = video[:, 8 * k : 8 * (k + 1)], video_mask[:, 8 * k : 8 * (k + 1)]
        encoded = model.feature_encoder(clip, clip_mask)
        attended = model.cross_attention(encoded, query, clip_mask, query_mask)
        nil_encoded, logits = model.nil_prediction(attended, clip_mask)
        clip_features.append(nil_encoded.numpy())
        clip_logits.append(logits.numpy())
    clip_logits = np.stack(clip_logits, axis=1)
    valid_clips = np.arange(3)[None, :] * 8 < np.array(VIDEO_LENGTHS)[:, None]
    scores = np.where(valid_clips, 1 / (1 + np.exp(-clip_logits)), 0)
    weights = scores / scores.max(axis=1, keepdims=True)
    concatenated = np.concatenate([clip_features[k] * weights[:, k, None, None] for k in range(3)], axis=1)
    want = model.localize(tf.constant(concatenated), video_mask, sentence)
    np.testing.assert_allclose(
        np.where(valid_clips, outputs["nil_logits"][:, 0], 0), np.where(valid_clips, clip_logits, 0), atol=1e-5
    )
    for key in ("start_logits", "end_logits", "highlight_logits"):
        checks.assert_valid_positions_equal(outputs[key][:, 0], want[key], VIDEO_LENGTHS, atol=1e-4)


def test_vslnet_l_loss_is_the_sum_over_scales_with_nil_labels_of_overlapping_clips():
    model = small_model("vslnet_l", highlight_lambda=0.5)
    batch = random_batch()
    outputs = model(batch)
    total = model.compute_losses(batch, outputs)
    per_scale = []
    for index, clip_length in enumerate((6, 8, 12)):
        single = vslnet.VSLNetL.from_config({**model.get_config(), "clip_lengths": (clip_length,)})
        single(batch)
        single.set_weights(model.get_weights())
        per_scale.append(single.compute_losses(batch, single(batch)))
        np.testing.assert_allclose(single(batch)["start_logits"][:, 0], outputs["start_logits"][:, index], atol=1e-5)
    np.testing.assert_allclose(total["loss"], sum(float(terms["loss"]) for terms in per_scale), rtol=1e-5)
    num_clips = 24 // 8
    nil_targets = labels.nil_labels(batch["start_index"], batch["end_index"], 8, num_clips).numpy()
    np.testing.assert_array_equal(nil_targets, [[1, 1, 1], [1, 1, 0], [1, 0, 0]])


def test_vslnet_l_n600_four_scales_forward_and_backward_batch_2():
    config = configs.base_config().model
    config.update(name="vslnet_l", video_feature_dim=64, max_position=600)
    config.clip_lengths = (100, 120, 150, 200)
    model = vslnet.build_model(config, 52, 30, RNG.normal(size=(50, 300)).astype("float32"))
    batch = {
        "video_features": RNG.normal(size=(2, 600, 64)).astype("float32"),
        "video_length": np.array([600, 250], "int32"),
        "word_ids": np.tile(np.r_[np.arange(2, 10), np.zeros(4)].astype("int32"), (2, 1)),
        "char_ids": RNG.integers(1, 30, size=(2, 12, 8)).astype("int32"),
        "start_index": np.array([120, 10]),
        "end_index": np.array([480, 60]),
    }
    batch["highlight"] = np.stack(
        [
            labels.highlight_labels(s, e, n, 600).numpy()
            for s, e, n in zip(batch["start_index"], batch["end_index"], batch["video_length"])
        ]
    )
    with tf.GradientTape() as tape:
        outputs = model(batch, training=True)
        terms = model.compute_losses(batch, outputs)
    grads = tape.gradient(terms["loss"], model.trainable_variables)
    assert outputs["start_logits"].shape == (2, 4, 600) and outputs["nil_logits"].shape == (2, 4, 6)
    np.testing.assert_array_equal(outputs["clip_mask"][1, 3], [True, True, False, False, False, False])
    assert np.isfinite(float(terms["loss"])) and all(g is not None for g in grads)
    assert np.isfinite(float(tf.linalg.global_norm(grads)))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"name": "vslnet_xl"}, "config.model.name must be one of"),
        ({"encoder_type": "gru"}, "encoder_type"),
        ({"attention_type": "dot"}, "attention_type"),
    ],
)
def test_unknown_choices_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        vslnet.build_model(small_config(**overrides), VOCABULARY, CHARS)


def test_vslnet_l_rejects_a_length_that_is_not_a_multiple_of_every_clip():
    model = small_model("vslnet_l", clip_lengths=(7,))
    with pytest.raises(ValueError, match="multiple of every clip length"):
        model(random_batch())


@pytest.mark.parametrize("variant", ["vslnet", "vslnet_l", "vslbase_bilstm_cat"])
def test_tf_checkpoint_saves_and_restores_every_weight(variant, tmp_path):
    """tf.train.Checkpoint (what training and resume use) must see every variable, including sub-layers."""
    model = _model_for(variant)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("model/")]
    assert len(saved) == len([w for w in model.weights if "seed_generator" not in w.path])
    fresh = _model_for(variant)
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    for restored, original in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(restored.numpy(), original.numpy(), err_msg=original.path)
