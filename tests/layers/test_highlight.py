"""Query-guided highlighting (Eq. 7) against numpy, in the authors' and the paper's variants."""

import numpy as np
import pytest

from nlvl_tf.model.layers import highlight, masking
from tests.layers import checks, reference

RNG = np.random.default_rng(2)
LENGTHS = [6, 2]


def _inputs(length=6, hidden=8):
    return (
        RNG.normal(size=(2, length, hidden)).astype("float32"),
        RNG.normal(size=(2, hidden)).astype("float32"),
        checks.lengths_to_mask(LENGTHS, length),
    )


@pytest.mark.parametrize("project", [True, False])
def test_highlighting_matches_numpy(project):
    features, sentence, mask = _inputs()
    layer = highlight.QueryGuidedHighlighting(project_concat=project)
    out, logits = layer(features, sentence, mask)
    concat = np.concatenate([features, np.broadcast_to(sentence[:, None], features.shape)], axis=-1)
    if project:
        kernel, bias = [w.numpy() for w in layer.concat_projection.weights]
        concat = concat @ kernel + bias
    kernel, bias = [w.numpy() for w in layer.scorer.weights]
    want_logits = (concat @ kernel + bias)[..., 0]
    np.testing.assert_allclose(np.where(mask, logits, 0), np.where(mask, want_logits, 0), atol=1e-5)
    assert np.all(logits.numpy()[~mask] == masking.MASK_VALUE)
    want = concat * reference.sigmoid(want_logits)[..., None]
    checks.assert_valid_positions_equal(want, out, LENGTHS)
    assert out.shape[-1] == (8 if project else 16)


def test_padding_invariance_and_round_trip():
    features, sentence, mask = _inputs()
    layer = highlight.QueryGuidedHighlighting()
    short, _ = layer(features, sentence, mask)
    long, _ = layer(checks.pad_with_noise(features, 12), sentence, checks.lengths_to_mask(LENGTHS, 12))
    checks.assert_valid_positions_equal(short, long, LENGTHS)
    checks.assert_round_trip(
        highlight.QueryGuidedHighlighting(project_concat=False), lambda layer: layer(features, sentence, mask)
    )
