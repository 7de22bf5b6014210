"""The export loads wherever SavedModels are served (`saved_model_cli run`, the TF1 session loader that
tensorflow_model_server uses, `tf.saved_model.load`) with identical answers; its graph needs no XLA unless exported
with `xla_loop`; the `details` signature's curves are the model's probabilities."""

import functools
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from nlvl_tf.data import text
from nlvl_tf.model.layers import compilation, lstm
from nlvl_tf.serve import export
from tests import exports

SAVED_MODEL_CLI = pathlib.Path(sys.executable).parent / "saved_model_cli"
XLA_ATTRIBUTES = ("_XlaMustCompile", "XlaMustCompile")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(config, vocabulary, vocabulary_dir, model, export_dir): a VSLNet exported with the defaults."""
    directory = tmp_path_factory.mktemp("vslnet")
    config, vocabulary, vocabulary_dir, model = exports.small_model(directory, "vslnet")
    export.save(model, config, vocabulary, str(vocabulary_dir), str(directory / "export"), top_k=4)
    return config, vocabulary, vocabulary_dir, model, directory / "export"


@functools.cache
def _loaded(export_dir):
    return tf.saved_model.load(export_dir)


def through_tf_saved_model_load(export_dir, signature, inputs):
    outputs = _loaded(str(export_dir)).signatures[signature](
        **{key: tf.constant(value) for key, value in inputs.items()}
    )
    return {key: value.numpy() for key, value in outputs.items()}


def through_tf1_session_loader(export_dir, signatures, inputs):
    """What tensorflow_model_server does: load the MetaGraph and restore the variables in a session, then run each
    signature's tensors by name. Returns {signature: outputs}."""
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export_dir))
        answers = {}
        for signature in signatures:
            definition = meta_graph.signature_def[signature]
            feed = {definition.inputs[key].name: value for key, value in inputs.items()}
            answers[signature] = session.run({key: info.name for key, info in definition.outputs.items()}, feed)
        return answers


def through_saved_model_cli(export_dir, signature, inputs, directory):
    np.savez(directory / "inputs.npz", **inputs)
    result = subprocess.run(
        [
            str(SAVED_MODEL_CLI),
            "run",
            f"--dir={export_dir}",
            "--tag_set=serve",
            f"--signature_def={signature}",
            "--inputs=" + ";".join(f"{key}={directory / 'inputs.npz'}[{key}]" for key in inputs),
            f"--outdir={directory / 'outputs'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {path.stem: np.load(path) for path in (directory / "outputs").glob("*.npy")}


def test_export_answers_identically_through_saved_model_cli_the_tf1_session_loader_and_tf_load(exported, tmp_path):
    export_dir = exported[-1]
    inputs = exports.video_batch()
    signatures = ("serving_default", "details")
    tf1_answers = through_tf1_session_loader(export_dir, signatures, inputs)
    for signature in signatures:
        expected = through_tf_saved_model_load(export_dir, signature, inputs)
        details = (*export.DETAILS_OUTPUTS, "highlight") if signature == "details" else ()
        assert set(expected) == {*export.SERVING_OUTPUTS, *details}
        answers = [tf1_answers[signature]]
        if signature == "serving_default":  # one command-line run: a process that imports TensorFlow costs seconds
            answers.append(through_saved_model_cli(export_dir, signature, inputs, tmp_path))
        for answer in answers:
            assert set(answer) == set(expected)
            for key, value in expected.items():
                np.testing.assert_array_equal(answer[key], value, err_msg=f"{signature}: {key}")


def xla_marked(export_dir):
    """Names of the functions and nodes of a SavedModel's graphs (main graph and function library) that ask for XLA
    compilation, and any XLA op."""
    saved = saved_model_pb2.SavedModel.FromString((pathlib.Path(export_dir) / "saved_model.pb").read_bytes())
    found = []
    for meta_graph in saved.meta_graphs:
        functions = list(meta_graph.graph_def.library.function)
        nodes = [("main", node) for node in meta_graph.graph_def.node]
        nodes += [(function.signature.name, node) for function in functions for node in function.node_def]
        found += [f.signature.name for f in functions if any(f.attr[key].b for key in XLA_ATTRIBUTES if key in f.attr)]
        found += [
            f"{owner}/{node.name}"
            for owner, node in nodes
            if node.op.startswith("Xla") or any(node.attr[key].b for key in XLA_ATTRIBUTES if key in node.attr)
        ]
    return found


def test_serving_graph_needs_no_xla_unless_exported_with_the_xla_loop(exported, tmp_path):
    config, vocabulary, vocabulary_dir, model, plain_dir = exported
    xla_dir = tmp_path / "xla"
    export.save(model, config, vocabulary, str(vocabulary_dir), str(xla_dir), top_k=4, xla_loop=True)
    answers = {}
    for xla_loop, export_dir in ((False, plain_dir), (True, xla_dir)):
        marked = xla_marked(export_dir)
        assert bool(marked) == xla_loop, marked
        answers[xla_loop] = through_tf_saved_model_load(export_dir, "details", exports.video_batch())
        metadata = through_tf_saved_model_load(export_dir, "metadata", {})["metadata"]
        assert f'"xla_loop": {str(xla_loop).lower()}' in metadata.decode()
    for key, value in answers[False].items():
        np.testing.assert_allclose(answers[True][key], value, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("batch_size", [3, 2 * lstm.MIN_CHUNK_ROWS + 1])  # the fused op; the while-loops in chunks
@pytest.mark.parametrize("batch_known", [True, False])  # False: traced with B = None, as in the exported signature
def test_plain_graph_lstm_computes_what_the_compiled_loop_computes(batch_size, batch_known):
    layer = lstm.UnidirectionalLSTM(8)
    inputs = tf.constant(np.random.default_rng(0).normal(size=(batch_size, 17, 5)).astype(np.float32))
    signature = [tf.TensorSpec([batch_size if batch_known else None, 17, 5], tf.float32)]

    @tf.function(input_signature=signature)
    def outputs_and_gradients(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            loss = tf.reduce_sum(outputs * tf.range(1.0, 9.0))
        return outputs, tape.gradient(loss, [inputs, *layer.trainable_variables])

    compiled = outputs_and_gradients(inputs)
    with compilation.plain_graph():
        plain = tf.function(outputs_and_gradients.python_function, input_signature=signature)(inputs)
    np.testing.assert_allclose(plain[0], compiled[0], atol=1e-6)
    for got, want in zip(plain[1], compiled[1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _sigmoid(logits):
    return np.exp(-np.logaddexp(0.0, -logits))


def _softmax(logits, valid):
    values = np.where(valid, logits, -np.inf)
    values = np.exp(values - values.max())
    return values / values.sum()


@pytest.mark.parametrize("model_type", ["vslnet", "vslnet_l"])
def test_details_curves_are_the_models_probabilities(model_type, exported, tmp_path):
    if model_type == "vslnet":
        config, _, vocabulary_dir, model, export_dir = exported
    else:
        config, model, export_dir = exports.small_export(tmp_path, model_type)
        vocabulary_dir = tmp_path / "vocabulary"
    inputs = exports.video_batch()
    inputs["video_length"] = np.minimum(inputs["video_length"], 24)  # n = 24: no resampling, only padding
    inputs["video_features"] = inputs["video_features"][:, :24]
    details = through_tf_saved_model_load(export_dir, "details", inputs)
    extra = export.VSLNET_L_DETAILS if model_type == "vslnet_l" else ()
    assert set(details) == {*export.SERVING_OUTPUTS, *export.DETAILS_OUTPUTS, "highlight", *extra}
    served = through_tf_saved_model_load(export_dir, "serving_default", inputs)
    for key in export.SERVING_OUTPUTS:
        np.testing.assert_array_equal(details[key], served[key])
    word_ids, char_ids = text.QueryEncoder(str(vocabulary_dir), 10, 8)(tf.constant(inputs["query"]))
    lengths = inputs["video_length"]
    valid_rows = np.arange(24)[None, :, None] < lengths[:, None, None]
    outputs = model(
        {
            "video_features": np.where(valid_rows, inputs["video_features"], 0.0),
            "video_length": lengths,
            "word_ids": word_ids,
            "char_ids": char_ids,
        }
    )
    outputs = {key: value.numpy() for key, value in outputs.items()}
    np.testing.assert_array_equal(details["length"], lengths)
    for row, length in enumerate(lengths):
        valid = np.arange(24) < length
        scale = ()
        if model_type == "vslnet_l":  # brute force: the scale whose most probable span s <= e is the most probable
            best = []
            for s in range(len(config.model.clip_lengths)):
                start = _softmax(outputs["start_logits"][row, s], valid)
                end = _softmax(outputs["end_logits"][row, s], valid)
                best.append(max(start[i] * end[j] for i in range(length) for j in range(i, length)))
            scale = (int(np.argmax(best)),)
            clip_length = config.model.clip_lengths[scale[0]]
            assert details["scale"][row] == scale[0] and details["clip_length"][row] == clip_length
            nil = _sigmoid(outputs["nil_logits"][row, scale[0]])
            expected_clip = np.where(valid, nil[np.arange(24) // clip_length], 0.0)
            np.testing.assert_allclose(details["clip_score"][row], expected_clip, atol=1e-5)
        for key, logits in (("start_prob", "start_logits"), ("end_prob", "end_logits")):
            expected = _softmax(outputs[logits][(row, *scale)], valid)
            np.testing.assert_allclose(details[key][row], expected, atol=1e-5, err_msg=key)
        highlight = _sigmoid(outputs["highlight_logits"][(row, *scale)])
        np.testing.assert_allclose(details["highlight"][row], np.where(valid, highlight, 0.0), atol=1e-5)
