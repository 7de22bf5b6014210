"""Every layer of nlvl_tf.model.layers through `checks.run_layer_test`: weights, serialization, symbolic call, a
training step and a per-layer mixed_float16 policy."""

import inspect

import keras
import numpy as np
import pytest

from nlvl_tf.model import layers as layers_package
from nlvl_tf.model.layers import (
    attention,
    dropout,
    embedding,
    encoder,
    highlight,
    lstm,
    nil,
    predictor,
)
from tests.layers import checks

RNG = np.random.default_rng(11)
B, L, M, D = 2, 6, 4, 8
FEATURES = RNG.normal(size=(B, L, D)).astype("float32")
QUERY = RNG.normal(size=(B, M, D)).astype("float32")
SENTENCE = RNG.normal(size=(B, D)).astype("float32")
MASK = checks.lengths_to_mask([6, 3], L)
QUERY_MASK = checks.lengths_to_mask([4, 2], M)
WORD_IDS = np.array([[2, 1, 5, 0], [3, 4, 0, 0]], "int32")
CHAR_IDS = RNG.integers(1, 9, size=(B, M, 5)).astype("int32")
CHAR_IDS[WORD_IDS == 0] = 0

# (layer class, constructor arguments, call inputs, output shapes, trainable, non-trainable, float32 outputs)
CASES = {
    "Dropout": (dropout.Dropout, {"rate": 0.2}, (FEATURES,), [(B, L, D)], 0, 0, ()),
    "WordEmbedding": (
        embedding.WordEmbedding,
        {"vocabulary_size": 7, "embedding_dim": 3, "pretrained": RNG.normal(size=(5, 3)), "dropout": 0.1},
        (WORD_IDS,),
        [(B, M, 3)],
        1,
        1,
        (),
    ),
    "CharacterCNN": (
        embedding.CharacterCNN,
        {"num_chars": 9, "char_dim": 4, "kernel_widths": (1, 3), "filters": (2, 3)},
        (CHAR_IDS,),
        [(B, M, 5)],
        5,
        0,
        (),
    ),
    "DepthwiseConv1D": (encoder.DepthwiseConv1D, {"kernel_size": 3}, (FEATURES,), [(B, L, D)], 1, 0, ()),
    "MultiHeadSelfAttention": (
        encoder.MultiHeadSelfAttention,
        {"num_heads": 2, "dropout": 0.1},
        (FEATURES, MASK),
        [(B, L, D)],
        6,
        0,
        (),
    ),
    "ConvBlock": (encoder.ConvBlock, {"kernel_size": 3, "dropout": 0.1}, (FEATURES, MASK), [(B, L, D)], 5, 0, ()),
    "FeatureEncoder": (
        encoder.FeatureEncoder,
        {"num_heads": 2, "kernel_size": 3, "num_conv_layers": 2, "max_position": 10, "dropout": 0.1},
        (FEATURES, MASK),
        [(B, L, D)],
        1 + 2 * 5 + 2 + 6 + 2 + 2,
        0,
        (),
    ),
    "BiLSTMEncoder": (encoder.BiLSTMEncoder, {}, (FEATURES, MASK), [(B, L, D)], 6, 0, ()),
    "ContextQueryAttention": (
        attention.ContextQueryAttention,
        {"dropout": 0.1},
        (FEATURES, QUERY, MASK, QUERY_MASK),
        [(B, L, D)],
        4,
        0,
        (),
    ),
    "ConcatAttention": (attention.ConcatAttention, {}, (FEATURES, QUERY, MASK, QUERY_MASK), [(B, L, D)], 2, 0, ()),
    "AttentionPooling": (attention.AttentionPooling, {}, (QUERY, QUERY_MASK), [(B, D)], 1, 0, ()),
    "QueryGuidedHighlighting": (
        highlight.QueryGuidedHighlighting,
        {"project_concat": True},
        (FEATURES, SENTENCE, MASK),
        [(B, L, D), (B, L)],
        4,
        0,
        (1,),
    ),
    "UnidirectionalLSTM": (lstm.UnidirectionalLSTM, {"units": 5}, (FEATURES,), [(B, L, 5)], 3, 0, ()),
    "ConditionedSpanPredictor": (
        predictor.ConditionedSpanPredictor,
        {"hidden_size": 5, "head": "mlp"},
        (FEATURES, MASK),
        [(B, L), (B, L)],
        6 + 8,
        0,
        (0, 1),
    ),
    "NilPrediction": (
        nil.NilPrediction,
        {"num_heads": 2, "kernel_size": 3, "num_conv_layers": 1, "max_position": 8},
        (FEATURES, MASK),
        [(B, L, D), (B,)],
        1 + 5 + 2 + 6 + 2 + 2 + 1 + 2,
        0,
        (1,),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_passes_the_harness(name):
    layer_class, init_kwargs, inputs, shapes, trainable, non_trainable, float32_outputs = CASES[name]
    checks.run_layer_test(
        layer_class,
        init_kwargs,
        inputs,
        expected_output_shapes=shapes,
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        float32_outputs=float32_outputs,
    )


def test_every_layer_of_the_package_is_in_the_harness():
    modules = [attention, dropout, embedding, encoder, highlight, lstm, nil, predictor]
    defined = {
        name
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, keras.layers.Layer) and value.__module__ == module.__name__
    }
    assert defined == set(CASES)
    assert {module.__name__.rsplit(".", 1)[1] for module in modules} >= {
        name for name in ("attention", "dropout", "embedding", "encoder", "highlight", "lstm", "nil", "predictor")
    }
    assert layers_package.__doc__
