"""Serving videos: experiments/serve.py speaks TensorFlow Serving's REST API (a plain HTTP client gets exactly the
signatures' outputs; bad requests and bad uploads get a 4xx with a clear error and the server stays up; concurrent
clients get the sequential answers with bounded memory), uploads are extracted and localized (also through the page
in Chromium), `Localizer.predict_video` and `predict.py --video` answer from cached features.

One server process for the module, on 127.0.0.1: a small random-weights localizer for 1024-d features and an I3D
extractor with random weights, on small generated videos.
"""

import concurrent.futures
import hashlib
import io
import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format

from nlvl_tf import errors
from nlvl_tf.serve import localizer as localizer_lib
from nlvl_tf.serve import rest_api, video_features
from nlvl_tf.serve import server as server_lib
from nlvl_tf.video import decoding, extraction, i3d, weights
from nlvl_tf.video import export as extractor_export
from tests import browser, exports, server_process
from tests.video import videos

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
DIM = i3d.FEATURE_DIM
MAX_UPLOAD_MB = 1


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return exports.small_export(tmp_path_factory.mktemp("localizer"), "vslnet", feature_dim=DIM)[2]


@pytest.fixture(scope="module")
def extractor_dir(tmp_path_factory):
    """The extractor export of an I3D with random weights (what experiments/export_extractor.py writes)."""
    directory = tmp_path_factory.mktemp("extractor")
    weights.save(i3d.build(num_classes=11), directory / "random_i3d.weights.h5")
    extractor_export.export(directory / "random_i3d.weights.h5", "vslnet_charades", directory / "export")
    return directory / "export"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 2-second WebM (VP8, 24 fps): two of the preset's 24-frame windows, 4 feature rows; Chromium plays it."""
    path = tmp_path_factory.mktemp("videos") / "clip.webm"
    videos.write_video(path, 48, 24, codec="libvpx")
    return path


@pytest.fixture(scope="module")
def clip_features(clip, extractor_dir):
    """The clip's features, extracted in this process with the extractor export."""
    video = extraction.features_from_video(clip, tf.saved_model.load(str(extractor_dir)))
    assert video.duration == 2.0
    return video.features


@pytest.fixture(scope="module")
def server(export_dir, extractor_dir, tmp_path_factory):
    flags = [
        f"--saved_model={export_dir}",
        f"--extractor={extractor_dir}",
        f"--max_upload_mb={MAX_UPLOAD_MB}",
        f"--cache_dir={tmp_path_factory.mktemp('server_cache')}",
    ]
    process = server_process.ServerProcess(flags, tmp_path_factory.mktemp("log") / "server.log")
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


FEATURES = np.random.default_rng(0).normal(size=(30, DIM)).astype(np.float32)
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
    inputs = exports.video_batch(feature_dim=DIM)  # three videos, 10, 24 and 40 rows, as one [3, 40, 1024] batch
    body = {name: value.tolist() for name, value in inputs.items() if name != "query"}
    body["query"] = [query.decode() for query in inputs["query"]]
    for signature in ("serving_default", "details"):
        expected = _expected(signatures, signature, inputs)
        status, answer = server_process.call(predict_url(server), {"signature_name": signature, "inputs": body})
        assert status == 200, answer
        _assert_exact(answer["outputs"], expected)
        rows = [{name: body[name][row] for name in body} for row in range(3)]
        status, answer = server_process.call(predict_url(server), {"signature_name": signature, "instances": rows})
        assert status == 200, answer
        assert len(answer["predictions"]) == 3
        for row, prediction in enumerate(answer["predictions"]):
            _assert_exact(prediction, {name: value[row] for name, value in expected.items()})
    # A single-input signature takes a bare list, strings also as {"b64": ...}; versioned URLs name the same model.
    status, answer = server_process.call(
        f"{server.url}/v1/models/nlvl/versions/1:predict",
        {"signature_name": "tokenize", "inputs": ["door", {"b64": "ZG9vcg=="}]},
    )
    assert status == 200
    expected = _expected(signatures, "tokenize", {"query": np.array([b"door", b"door"], object)})
    _assert_exact(answer["outputs"], expected)


def test_status_and_metadata_answer_as_tensorflow_serving_does(server, export_dir):
    assert server_process.call(f"{server.url}/v1/models/nlvl") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    status, metadata = server_process.call(f"{server.url}/v1/models/nlvl/metadata")
    assert status == 200 and metadata["model_spec"] == {"name": "nlvl", "signature_name": "", "version": "1"}
    served = metadata["metadata"]["signature_def"]["signature_def"]
    on_disk = rest_api.read_signature_defs(str(export_dir))
    assert set(served) == set(on_disk) >= {"serving_default", "details", "tokenize", "metadata"}
    for name, definition in on_disk.items():
        assert json_format.ParseDict(served[name], type(definition)()) == definition, name
    video_features = served["serving_default"]["inputs"]["video_features"]
    assert video_features["dtype"] == "DT_FLOAT"
    assert [int(dim["size"]) for dim in video_features["tensor_shape"]["dim"]] == [-1, -1, DIM]


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
        "input 'video_features' of signature 'serving_default' must have shape [?, ?, 1024], got [1, 30, 7]",
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
        {"inputs": {**GOOD["inputs"], "video_features": [[["1.0"] * DIM]]}},
        "nlvl",
        400,
        "Type: String is not of expected type: float",
    ),
    (
        "ragged features",
        {"inputs": {**GOOD["inputs"], "video_features": [[[0.0] * DIM, [0.0] * (DIM - 1)]]}},
        "nlvl",
        400,
        "Encountered list at unexpected size: 1023 at level: 2 expected size: 1024",
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
    got_status, answer = server_process.call(predict_url(server, model), body)
    assert got_status == status and set(answer) == {"error"}, answer
    assert message in answer["error"], answer["error"]
    assert "Traceback" not in answer["error"] and "node" not in answer["error"]
    got_status, answer = server_process.call(predict_url(server), GOOD)
    assert got_status == 200
    _assert_exact(answer["outputs"], good_answer)


def test_eight_concurrent_clients_get_the_sequential_answers_with_bounded_memory(server):
    rng = np.random.default_rng(5)
    words = ["the", "person", "opens", "door", "a", "man", "throws", "ball", "cooking", "egg"]
    bodies = []
    for _ in range(16):
        rows = int(rng.integers(3, 20))
        features = rng.normal(size=(rows, DIM)).astype(np.float32)
        query = " ".join(rng.choice(words, size=int(rng.integers(1, 8))))
        bodies.append({"inputs": columns(features, rows, rows / 2, query)})
    url = predict_url(server) + "?client=concurrent"
    sequential = [server_process.call(url, body) for body in bodies]
    assert all(status == 200 for status, _ in sequential)
    memory_before = server.peak_rss_mib()

    def client(seed):
        order = np.random.default_rng(seed).integers(0, len(bodies), size=50)
        return [(int(index), server_process.call(url, bodies[index])) for index in order]

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


def test_empty_lists_and_integers_beyond_64_bits_convert_or_are_refused_by_range():
    int32, float32 = rest_api.types_pb2.DT_INT32, rest_api.types_pb2.DT_FLOAT
    empty = rest_api.to_array([[], []], int32, "video_length")
    assert empty.dtype == np.int32 and empty.shape == (2, 0)
    assert rest_api.to_array([], rest_api.types_pb2.DT_BOOL, "flags").dtype == np.bool_
    np.testing.assert_array_equal(rest_api.to_array([2**70, 1], float32, "duration"), np.float32([2.0**70, 1.0]))
    with pytest.raises(rest_api.ApiError, match="input 'video_length': a value is out of the range of int32"):
        rest_api.to_array([2**70], int32, "video_length")
    with pytest.raises(rest_api.ApiError, match="out of the range of float"):
        rest_api.to_array([10**400], float32, "duration")


BOOLEANS_AMONG_NUMBERS = [
    # (value, dtype name): numpy makes these int64 or float64
    ([1, True], "int32"),
    ([[2, 3], [False, 4]], "int32"),
    ([1, True], "float"),
    ([0.5, False], "float"),
]


@pytest.mark.parametrize("value, dtype", BOOLEANS_AMONG_NUMBERS)
def test_a_boolean_among_numbers_is_refused_as_tensorflow_serving_does(value, dtype):
    dtype_enum = {"int32": rest_api.types_pb2.DT_INT32, "float": rest_api.types_pb2.DT_FLOAT}[dtype]
    message = rf"JSON Value: (true|false) Type: Boolean is not of expected type: {dtype}$"
    with pytest.raises(rest_api.ApiError, match=message):
        rest_api.to_array(value, dtype_enum, "video_length")


def test_a_port_in_use_is_a_user_error_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(errors.InputError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            server_lib.Server(("127.0.0.1", port), application=None)


# ------------------------------------------------------------------------------------------------ videos


def upload(server, data, content_type, filename="clip.webm"):
    return server_process.call(
        f"{server.url}/page/uploads", data, headers={"Content-Type": content_type, "X-Filename": filename}
    )


def test_an_upload_is_extracted_and_localized_through_the_api(server, clip, clip_features):
    status, video = upload(server, clip.read_bytes(), "video/webm")
    assert status == 200, video
    assert video["rows"] == 4 and video["duration"] == pytest.approx(2.0) and video["id"].startswith("upload-")
    headers, data = server_process.fetch(f"{server.url}/page/videos/{video['id']}/features")
    served = np.frombuffer(data, "<f4").reshape(int(headers["X-Rows"]), int(headers["X-Dim"]))
    np.testing.assert_array_equal(served, clip_features)
    status, answer = server_process.call(
        f"{server.url}/v1/models/nlvl:predict", {"inputs": columns(served, 4, video["duration"], "a person opens")}
    )
    assert status == 200 and len(answer["outputs"]["start_time"][0]) == 4


BAD_UPLOADS = [
    # (name, body, declared type, status, words the error must contain)
    ("text declared as text", b"just some notes\n" * 10, "text/plain", 415, "declared as 'text/plain', not a video"),
    ("text declared as video", b"just some notes\n" * 10, "video/mp4", 415, "not a video file: its first bytes"),
    ("image", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png", 415, "declared as 'image/png'"),
    ("empty", b"", "video/webm", 400, "the upload is empty"),
    ("undecodable", b"\x00\x00\x00\x18ftypmp42" + bytes(300), "video/mp4", 422, "could not be decoded as a video"),
    ("over the limit", b"\x1a\x45\xdf\xa3" + bytes(2 * 2**20), "video/webm", 413, "over the limit of 1.0 MiB"),
]


@pytest.mark.parametrize("name, data, content_type, status, message", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_a_bad_upload_gets_a_4xx_that_says_what_is_wrong_and_the_next_request_succeeds(
    server, good_answer, name, data, content_type, status, message
):
    got_status, answer = upload(server, data, content_type)
    assert got_status == status and set(answer) == {"error"}, answer
    assert message in answer["error"], answer["error"]
    got_status, answer = server_process.call(predict_url(server), GOOD)
    assert got_status == 200
    _assert_exact(answer["outputs"], good_answer)


def test_the_page_uploads_a_video_and_shows_its_moments(server, clip, tmp_path):
    with browser.page() as page:
        page.goto(server.url + "/")
        page.wait_for_selector("#upload-box:not([hidden])")
        page.set_input_files("#upload-input", str(clip))
        page.wait_for_function("document.querySelector('#source-status').textContent.includes('feature rows')")
        page.fill("#query-input", "a person opens the door")
        page.fill("#top-k", "3")
        page.click("#submit")
        page.wait_for_selector("#moments li >> nth=2")
        times = browser.moment_times(page)
        assert len(times) == 3 and all(0 <= start <= end <= 2.0 for start, end in times)
        page.screenshot(path=str(tmp_path / "upload.png"), full_page=True)
    browser.assert_not_blank(tmp_path / "upload.png")


class FakeRequest:
    """What `Application.answer` reads of a request: its body and headers."""

    def __init__(self, body=b"", headers=None):
        self._body = body
        self._headers = headers or {}

    def body(self, limit, what="request body"):
        return self._body

    def header(self, name):
        return self._headers.get(name)


class FakeFeaturizer:
    """Video features without a model: a file holding b"undecodable" fails as an undecodable video does."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        with open(path, "rb") as file:
            data = file.read()
        if b"undecodable" in data:
            raise decoding.VideoReadError(f"{path}: no video stream")
        return np.full((3, 2), len(data), np.float32), 1.5


@pytest.fixture
def application():
    """An Application answering the page's upload routes in this process (no model: no API calls)."""
    application = server_lib.Application(model=None, video_features=FakeFeaturizer())
    yield application
    application.close()


def post_upload(application, data):
    request = FakeRequest(data, {"Content-Type": "video/webm", "X-Filename": "clip.webm"})
    return application.answer("POST", "/page/uploads", request)


def test_an_upload_that_does_not_decode_is_not_kept(application):
    good = post_upload(application, b"\x1a\x45\xdf\xa3 a good video")
    assert good.status == 200
    good_id = json.loads(good.body)["id"]
    bad = b"\x1a\x45\xdf\xa3 undecodable"
    with pytest.raises(rest_api.ApiError, match="could not be decoded as a video") as raised:
        post_upload(application, bad)
    assert raised.value.status == 422
    bad_id = f"upload-{hashlib.sha256(bad).hexdigest()[:16]}"
    assert application.uploads.path(bad_id) is None and application.uploads.path(good_id) is not None
    assert os.listdir(application.uploads.directory) == [os.path.basename(application.uploads.path(good_id))]
    calls = application.video_features.calls
    missing = application.answer("GET", f"/page/videos/{bad_id}/features", FakeRequest())
    assert missing.status == 404 and application.video_features.calls == calls  # not decoded again


def test_an_upload_evicted_while_it_is_served_is_a_404_or_sent_whole(application):
    """Eviction removes the file between the id's lookup and the reading (here: before the request), or while the
    file reply is being sent (here: after the reply is made)."""
    data = b"\x1a\x45\xdf\xa3 a good video"
    upload_id = json.loads(post_upload(application, data).body)["id"]
    reply = application.answer("GET", f"/page/videos/{upload_id}/file", FakeRequest())
    os.remove(application.uploads.path(upload_id))
    sent = io.BytesIO()
    reply.write(sent)
    assert reply.status == 200 and sent.getvalue() == data
    for part in ("features", "file"):
        gone = application.answer("GET", f"/page/videos/{upload_id}/{part}", FakeRequest())
        assert gone.status == 404, gone.body
        assert json.loads(gone.body)["error"] == (
            f"upload '{upload_id}' is no longer kept (the server keeps the latest 16): upload it again"
        )


@pytest.mark.parametrize(
    "range_header, status, part",
    [
        ("bytes=10-19", 206, slice(10, 20)),
        ("bytes=-5", 206, slice(-5, None)),
        ("bytes=20-", 206, slice(20, None)),
        ("bytes=-", 200, slice(None)),  # invalid ranges are ignored (RFC 9110 section 14.2)
        ("bytes=5-3", 200, slice(None)),
        ("bytes=x-1", 200, slice(None)),
        ("bytes=40-", 416, None),  # valid but past the end
        ("bytes=-0", 416, None),
    ],
)
def test_a_video_file_is_served_whole_or_by_valid_range(application, range_header, status, part):
    data = b"\x1a\x45\xdf\xa3" + bytes(range(28))
    upload_id = json.loads(post_upload(application, data).body)["id"]
    reply = application.answer("GET", f"/page/videos/{upload_id}/file", FakeRequest(headers={"Range": range_header}))
    sent = io.BytesIO()
    reply.write(sent)
    assert reply.status == status
    if status == 416:
        assert reply.headers["Content-Range"] == "bytes */32" and sent.getvalue() == b""
        return
    assert sent.getvalue() == data[part] and reply.length == len(data[part])
    if status == 206:
        start = range(32)[part][0]
        assert reply.headers["Content-Range"] == f"bytes {start}-{start + len(data[part]) - 1}/32"
    else:
        assert "Content-Range" not in reply.headers


def test_a_feature_cache_that_cannot_be_written_costs_no_answer(extractor_dir, clip, clip_features, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    featurizer = video_features.VideoFeaturizer(str(extractor_dir), cache_dir=str(not_a_folder / "cache"))
    features, duration = featurizer(clip)
    np.testing.assert_array_equal(features, clip_features)
    assert duration == 2.0 and featurizer.last["cached"] is False and os.listdir(tmp_path) == ["file"]


def test_predict_command_answers_a_video_and_later_queries_read_the_cache(
    export_dir, extractor_dir, clip, clip_features, tmp_path
):
    result = subprocess.run(
        [
            sys.executable,
            str(server_process.REPO / "experiments" / "predict.py"),
            f"--saved_model={export_dir}",
            f"--video={clip}",
            f"--extractor={extractor_dir}",
            f"--cache_dir={tmp_path}",
            "--query=a person opens the door",
            "--top_k=3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first = json.loads(result.stdout.strip().splitlines()[-1])
    assert first["timing"]["features_cached"] is False and first["duration"] == pytest.approx(2.0)
    # The Python API on the same cache: the features come from disk, then from memory; the same moments.
    localizer = localizer_lib.Localizer.load(str(export_dir), extractor=str(extractor_dir), cache_dir=str(tmp_path))
    copy = tmp_path / "same_content.webm"  # another path, the same bytes: the same entry
    copy.write_bytes(clip.read_bytes())
    assert localizer.predict_video(copy, "a person opens the door", top_k=3) == first["moments"]
    timings = [dict(localizer.featurizer.last)]
    assert localizer.predict_video(clip, "a person opens the door", top_k=3) == first["moments"]
    timings.append(dict(localizer.featurizer.last))
    assert [timing["cached"] for timing in timings] == ["disk", "memory"]
    print(f"features: first {first['timing']['features_s']:.3f} s (extracted), then {timings}")
    assert first["moments"] == localizer.predict(clip_features, 2.0, "a person opens the door", top_k=3)
