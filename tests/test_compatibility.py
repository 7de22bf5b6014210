"""Workdirs written by nlvl-tf 0.1 (a flat config.json, checkpoints of the layers before their reorganisation) still
load, give the same outputs, evaluate to the same metrics and export (fixtures: tests/fixtures/README.md)."""

import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.eval import evaluation
from nlvl_tf.model import restore
from nlvl_tf.serve import export
from nlvl_tf.serve import localizer as localizer_lib

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
WORKDIRS = ["flat_config_workdir", "flat_config_workdir_vslnet_l"]


@pytest.fixture(params=WORKDIRS)
def old_workdir(request, tmp_path):
    """A writable copy of a 0.1 workdir."""
    return shutil.copytree(FIXTURES / request.param, tmp_path / request.param)


def test_the_model_of_a_0_1_workdir_gives_the_outputs_0_1_gave(old_workdir):
    _, _, model = restore.load_trained_model(str(old_workdir))
    saved = np.load(old_workdir / "expected_outputs.npz")
    batch = {key[len("input_") :]: tf.constant(saved[key]) for key in saved.files if key.startswith("input_")}
    outputs = model(batch, training=False)
    expected = {key[len("output_") :] for key in saved.files if key.startswith("output_")}
    assert set(outputs) == expected
    for key in expected:
        np.testing.assert_allclose(outputs[key], saved[f"output_{key}"], rtol=1e-5, atol=1e-5, err_msg=key)


def test_a_0_1_workdir_evaluates_to_its_recorded_metrics_and_exports(old_workdir, synthetic_data_dir, tmp_path):
    results = evaluation.evaluate_workdir(str(old_workdir), data_dir=synthetic_data_dir)
    recorded = json.loads((FIXTURES / old_workdir.name / "eval" / "test" / "metrics.json").read_text())
    written = json.loads((old_workdir / "eval" / "test" / "metrics.json").read_text())
    assert written == recorded and evaluation.flatten_single(results.results) == recorded
    metadata = export.export(str(old_workdir), str(tmp_path / "export"), top_k=3)
    localizer = localizer_lib.Localizer.load(str(tmp_path / "export"))
    features = np.random.default_rng(0).normal(size=(40, metadata["feature_dim"])).astype(np.float32)
    moments = localizer.predict(features, 20.0, "a person opens the door", top_k=3)
    assert len(moments) == 3 and all(0.0 <= m["start"] <= m["end"] <= 20.0 for m in moments)
