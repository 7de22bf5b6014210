"""experiments/serve.py speaks TensorFlow Serving's REST API: a plain HTTP client gets exactly the signatures'
outputs, bad requests get a 4xx with a clear error and the server stays up, concurrent clients get the sequential
answers with bounded memory. One server process for the module, on 127.0.0.1."""

import concurrent.futures
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format

from nlvl_tf.serve import rest_api
from tests import exports, serving

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exports.small_export(tmp_path_factory.mktemp("rest"), "vslnet")[2]


@pytest.fixture(scope="module")
def server(export_dir, tmp_path_factory):
    process = serving.ServerProcess([f"--saved_model={export_dir}"], tmp_path_factory.mktemp("log") / "server.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def signatures(export_dir):
    return tf.saved_model.load(str(export_dir)).signatures


@pytest.fixture(scope="module")
def good_answer(signatures):
    """The signature's answer to GOOD, computed once (every test's seeding clears TensorFlow's function caches, which
    makes the next in-process call seconds long)."""
    return _expected(signatures, "serving_default", GOOD_TENSORS)


def predict_url(server, model="nlvl"):
    return f"{server.url}/v1/models/{model}:predict"


def columns(features, length, duration, query):
    return {
        "video_features": [features.tolist()],
        "video_length": [length],
        "duration": [duration],
        "query": [query],
    }


FEATURES = np.random.default_rng(0).normal(size=(30, 12)).astype(np.float32)
GOOD = {"inputs": columns(FEATURES, 30, 15.0, "the person opens the door.")}
GOOD_TENSORS = {
    "video_features": FEATURES[None],
    "video_length": np.array([30], np.int32),
    "duration": np.array([15.0], np.float32),
    "query": np.array([b"the person opens the door."]),
}


def _expected(signatures, signature, inputs):
    outputs = signatures[signature](**{name: tf.constant(value) for name, value in inputs.items()})
    return {name: value.numpy() for name, value in outputs.items()}


def _assert_exact(answer, expected):
    assert set(answer) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(np.asarray(answer[name], value.dtype), value, err_msg=name)


def test_columnar_and_row_requests_return_exactly_the_signatures_outputs(server, signatures):
    inputs = exports.video_batch()  # three videos, 10, 24 and 40 rows, as one [3, 40, 12] batch
    body = {name: value.tolist() for name, value in inputs.items() if name != "query"}
    body["query"] = [query.decode() for query in inputs["query"]]
    for signature in ("serving_default", "details"):
        expected = _expected(signatures, signature, inputs)
        status, answer = serving.call(predict_url(server), {"signature_name": signature, "inputs": body})
        assert status == 200, answer
        _assert_exact(answer["outputs"], expected)
        rows = [{name: body[name][row] for name in body} for row in range(3)]
        status, answer = serving.call(predict_url(server), {"signature_name": signature, "instances": rows})
        assert status == 200, answer
        assert len(answer["predictions"]) == 3
        for row, prediction in enumerate(answer["predictions"]):
            _assert_exact(prediction, {name: value[row] for name, value in expected.items()})
    # A single-input signature takes a bare list, strings also as {"b64": ...}; versioned URLs name the same model.
    status, answer = serving.call(
        f"{server.url}/v1/models/nlvl/versions/1:predict",
        {"signature_name": "tokenize", "inputs": ["door", {"b64": "ZG9vcg=="}]},
    )
    assert status == 200
    expected = _expected(signatures, "tokenize", {"query": np.array([b"door", b"door"], object)})
    _assert_exact(answer["outputs"], expected)


def test_status_and_metadata_answer_as_tensorflow_serving_does(server, export_dir):
    assert serving.call(f"{server.url}/v1/models/nlvl") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    status, metadata = serving.call(f"{server.url}/v1/models/nlvl/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": "nlvl", "signature_name": "", "version": "1"}
    served = metadata["metadata"]["signature_def"]["signature_def"]
    on_disk = rest_api.read_signature_defs(str(export_dir))
    assert set(served) == set(on_disk) >= {"serving_default", "details", "tokenize", "metadata"}
    for name, definition in on_disk.items():
        assert json_format.ParseDict(served[name], type(definition)()) == definition, name
    video_features = served["serving_default"]["inputs"]["video_features"]
    assert video_features["dtype"] == "DT_FLOAT"
    assert [int(dim["size"]) for dim in video_features["tensor_shape"]["dim"]] == [-1, -1, 12]


def _nan_features():
    features = FEATURES.copy()
    features[4, 7] = np.nan
    return features


BAD_REQUESTS = [
    # (name, body or raw bytes, URL model name, expected status, words the error must contain)
    ("malformed JSON", b'{"inputs": {"video_features": [[1, 2]', "nlvl", 400, "JSON Parse error"),
    ("empty body", b"", "nlvl", 400, "The document is empty"),
    ("not an object", [1, 2, 3], "nlvl", 400, "Is not object"),
    ("no inputs or instances", {"signature_name": "serving_default"}, "nlvl", 400, "Missing 'inputs' or 'instances'"),
    (
        "missing input",
        {"inputs": {k: v for k, v in GOOD["inputs"].items() if k != "duration"}},
        "nlvl",
        400,
        "Missing named input: duration",
    ),
    (
        "wrong feature dimension",
        {"inputs": columns(FEATURES[:, :7], 30, 15.0, "door")},
        "nlvl",
        400,
        "input 'video_features' of signature 'serving_default' must have shape [?, ?, 12], got [1, 30, 7]",
    ),
    ("empty query", {"inputs": columns(FEATURES, 30, 15.0, "  ")}, "nlvl", 400, "query is empty or blank"),
    (
        "NaN features",
        {"inputs": columns(_nan_features(), 30, 15.0, "door")},
        "nlvl",
        400,
        "video_features has NaN or Inf in the first video_length rows",
    ),
    ("negative duration", {"inputs": columns(FEATURES, 30, -1.0, "door")}, "nlvl", 400, "duration must be > 0 seconds"),
    ("length over rows", {"inputs": columns(FEATURES, 31, 15.0, "door")}, "nlvl", 400, "video_length is larger"),
    (
        "fractional length",
        {"inputs": {**GOOD["inputs"], "video_length": [30.5]}},
        "nlvl",
        400,
        "input 'video_length': JSON Value: 30.5 Type: Number is not of expected type: int32",
    ),
    (
        "string features",
        {"inputs": {**GOOD["inputs"], "video_features": [[["1.0"] * 12]]}},
        "nlvl",
        400,
        "Type: String is not of expected type: float",
    ),
    (
        "ragged features",
        {"inputs": {**GOOD["inputs"], "video_features": [[[0.0] * 12, [0.0] * 11]]}},
        "nlvl",
        400,
        "Encountered list at unexpected size: 11 at level: 2 expected size: 12",
    ),
    (
        "unknown signature",
        {**GOOD, "signature_name": "serve"},
        "nlvl",
        400,
        'Serving signature name: "serve" not found',
    ),
    ("signature without inputs", {"signature_name": "metadata", "inputs": {}}, "nlvl", 400, "Failed to get input map"),
    ("unknown model", GOOD, "other", 404, "Servable not found for request: Latest(other)"),
]


@pytest.mark.parametrize("name, body, model, status, message", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_a_bad_request_gets_a_4xx_that_says_what_is_wrong_and_the_next_request_succeeds(
    server, good_answer, name, body, model, status, message
):
    got_status, answer = serving.call(predict_url(server, model), body)
    assert got_status == status and set(answer) == {"error"}, answer
    assert message in answer["error"], answer["error"]
    assert "Traceback" not in answer["error"] and "node" not in answer["error"]
    got_status, answer = serving.call(predict_url(server), GOOD)
    assert got_status == 200
    _assert_exact(answer["outputs"], good_answer)


def test_eight_concurrent_clients_get_the_sequential_answers_with_bounded_memory(server):
    rng = np.random.default_rng(5)
    words = ["the", "person", "opens", "door", "a", "man", "throws", "ball", "cooking", "egg"]
    bodies = []
    for _ in range(16):
        rows = int(rng.integers(5, 60))
        features = rng.normal(size=(rows, 12)).astype(np.float32)
        query = " ".join(rng.choice(words, size=int(rng.integers(1, 8))))
        bodies.append({"inputs": columns(features, rows, rows / 2, query)})
    url = predict_url(server) + "?client=concurrent"
    sequential = [serving.call(url, body) for body in bodies]
    assert all(status == 200 for status, _ in sequential)
    memory_before = server.peak_rss_mib()

    def client(seed):
        order = np.random.default_rng(seed).integers(0, len(bodies), size=50)
        return [(int(index), serving.call(url, bodies[index])) for index in order]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = [answer for result in pool.map(client, range(8)) for answer in result]
    assert len(answers) == 400
    for index, answer in answers:
        assert answer == sequential[index]
    peak = server.peak_rss_mib()
    print(f"server peak RSS: {memory_before:.0f} MiB before, {peak:.0f} MiB after 8 x 50 concurrent requests")
    assert peak < memory_before + 200, (memory_before, peak)
    # One log line per request, and nothing else for them.
    logged = [line for line in server.log_lines() if "client=concurrent" in line]
    assert len(logged) == 416 and all(
        '"POST /v1/models/nlvl:predict?client=concurrent" 200 ' in line for line in logged
    )


def test_the_answer_parses_as_json_with_nan_and_infinity_like_tensorflow_serving():
    outputs = {"score": np.array([[np.nan, np.inf, -np.inf, 0.5]], np.float32)}
    text = json.dumps(rest_api.columns_json(outputs))
    assert text == '{"outputs": [[NaN, Infinity, -Infinity, 0.5]]}'
    assert math.isnan(json.loads(text)["outputs"][0][0])
