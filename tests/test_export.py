"""SavedModel export: a fresh TensorFlow-only process gets the Keras model's answers from raw strings; Localizer and
predict.py validate their inputs; tokenization inside the export equals the training pipeline's."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.data import features as features_lib
from nlvl_tf.data import labels, text
from nlvl_tf.eval import decoding
from nlvl_tf.model import vslnet
from nlvl_tf.serve import export
from nlvl_tf.serve import localizer as localizer_lib
from tests import test_models

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY = REPO / "tfds_builders"
QUERIES = [
    "the person opens the door.",
    "a man throws the ball after he sits down",
    "zyxw qqq unknown!",
    "Somebody's cooking an egg",
    "door",
    "the person opens the door.",
]


def dummy_queries():
    """Every query in the builders' dummy data, parsed by each format's rules."""
    found = []
    for path in sorted(DUMMY.glob("charades_sta/dummy_data/**/charades_sta_*.txt")):
        found += [line.split("##", 1)[1] for line in path.read_text(encoding="utf-8").splitlines() if "##" in line]
    for path in sorted(DUMMY.glob("*/dummy_data/**/*.json")):
        if path.name == "charades.json" or path.name.startswith("nlq_"):
            continue
        for item in json.loads(path.read_text(encoding="utf-8")).values():
            found += item["sentences"]
    for path in sorted(DUMMY.glob("ego4d_nlq/dummy_data/**/nlq_*.json")):
        for video in json.loads(path.read_text(encoding="utf-8"))["videos"]:
            for clip in video["clips"]:
                for annotation in clip["annotations"]:
                    found += [q["query"] for q in annotation["language_queries"] if q and q.get("query")]
    for path in sorted(DUMMY.glob("tacos/dummy_data/org/TACoS_*_samples.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found += [s for s in line.split(":", 1)[1].split("#") if s.strip()]
    return found


@pytest.fixture(scope="module")
def vocabulary_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocabulary")
    corpus = QUERIES[:2] + dummy_queries()[::2]  # half the dummy queries: the rest bring unknown words
    vocabulary = text.build_vocabulary(corpus, corpus, word2vec_dim=8, min_char_count=1)
    vocabulary.save(directory)
    return directory


def _config(model, **overrides):
    return test_models.run_config(model, max_query_len=10, max_word_len=8, dropout=0.0, **overrides)


def _exported(tmp_path, vocabulary_dir, model_type):
    vocabulary = text.Vocabulary.load(vocabulary_dir)
    config = _config(model_type)
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    export_dir = tmp_path / model_type
    export.save(model, config, vocabulary, str(vocabulary_dir), str(export_dir), top_k=4)
    return config, model, export_dir


def _inputs():
    rng = np.random.default_rng(0)
    lengths = np.array([10, 24, 60, 7, 30, 24], np.int32)  # shorter and longer than n = 24
    features = rng.normal(size=(len(lengths), 60, 12)).astype(np.float32)
    durations = np.array([5.0, 12.0, 30.0, 3.5, 15.0, 12.0], np.float32)
    return features, lengths, durations


def _keras_answers(model, config, vocabulary_dir, features, lengths, durations):
    """The training-process computation: pipeline encoder, resampling, Keras model, decoding, index -> time."""
    encoder = text.QueryEncoder.from_config(str(vocabulary_dir), config.data)
    word_ids, char_ids = encoder(tf.constant(QUERIES))
    rows, new_lengths = [], []
    for video, length in zip(features, lengths):
        resampled = features_lib.resample(video[:length], config.data.max_video_len)
        rows.append(features_lib.pad(resampled, config.data.max_video_len)[0])
        new_lengths.append(int(resampled.shape[0]))
    new_lengths = tf.constant(new_lengths, tf.int32)
    outputs = model(
        {"video_features": tf.stack(rows), "video_length": new_lengths, "word_ids": word_ids, "char_ids": char_ids}
    )
    start, end, score = decoding.ranked_spans(outputs, new_lengths, 4, "pm")
    start_time, end_time = labels.index_to_time(start, end, tf.constant(durations), new_lengths)
    return {"start_time": start_time.numpy(), "end_time": end_time.numpy(), "score": score.numpy()}


FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
assert "nlvl_tf" not in sys.modules
args = np.load(sys.argv[2])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = serve(video_features=tf.constant(args["features"]), video_length=tf.constant(args["lengths"]),
            duration=tf.constant(args["durations"]), query=tf.constant(json.loads(sys.argv[3])))
assert "nlvl_tf" not in sys.modules
print(json.dumps({key: value.numpy().tolist() for key, value in out.items()}))
"""


@pytest.mark.parametrize("model_type", ["vslnet", "vslnet_l"])  # VSLBase is VSLNet without highlighting
def test_fresh_tensorflow_only_process_gets_the_keras_models_answers(model_type, tmp_path, vocabulary_dir):
    config, model, export_dir = _exported(tmp_path, vocabulary_dir, model_type)
    features, lengths, durations = _inputs()
    np.savez(tmp_path / "inputs.npz", features=features, lengths=lengths, durations=durations)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(export_dir), str(tmp_path / "inputs.npz"), json.dumps(QUERIES)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    expected = _keras_answers(model, config, vocabulary_dir, features, lengths, durations)
    for key in export.SERVING_OUTPUTS:
        np.testing.assert_allclose(np.array(served[key]), expected[key], atol=1e-5, err_msg=key)
    start, end = np.array(served["start_time"]), np.array(served["end_time"])
    assert np.all(start <= end) and np.all(start >= 0) and np.all(end <= durations[:, None] + 1e-5)
    assert np.all(np.diff(np.array(served["score"]), axis=1) <= 0)


def test_metadata_is_readable_from_the_savedmodel_alone(tmp_path, vocabulary_dir):
    _, model, export_dir = _exported(tmp_path, vocabulary_dir, "vslnet_l")
    loaded = tf.saved_model.load(str(export_dir))
    metadata = json.loads(loaded.signatures["metadata"]()["metadata"].numpy())
    assert metadata["model"] == "vslnet_l" and metadata["max_video_len"] == 24 and metadata["feature_dim"] == 12
    assert metadata["tokenizer_version"] == text.TOKENIZER_VERSION and metadata["top_k"] == 4
    assert metadata["vocabulary_size"] == text.Vocabulary.load(vocabulary_dir).num_words
    assert metadata["vocabulary_size"] == model.get_config()["vocabulary_size"]  # one meaning: ids incl. PAD, UNK
    assert metadata["config"]["model"]["clip_lengths"] == [6, 8, 12]


def test_tokenization_inside_the_export_equals_the_training_pipeline_on_all_dummy_queries(tmp_path, vocabulary_dir):
    _, _, export_dir = _exported(tmp_path, vocabulary_dir, "vslnet")
    queries = dummy_queries()
    assert len(queries) > 40
    tokenize = tf.saved_model.load(str(export_dir)).signatures["tokenize"]
    served = tokenize(query=tf.constant(queries))
    word_ids, char_ids = text.QueryEncoder(str(vocabulary_dir), 10, 8)(tf.constant(queries))
    np.testing.assert_array_equal(served["word_ids"], word_ids)
    np.testing.assert_array_equal(served["char_ids"], char_ids)
    assert (word_ids.numpy() == text.UNK_ID).any() and (word_ids.numpy() > text.UNK_ID).any()


@pytest.fixture(scope="module")
def localizer(tmp_path_factory, vocabulary_dir):
    _, _, export_dir = _exported(tmp_path_factory.mktemp("export"), vocabulary_dir, "vslnet")
    return localizer_lib.Localizer.load(str(export_dir)), export_dir


def test_localizer_answers_one_video_many_queries_and_a_batch_of_videos(localizer):
    loc, _ = localizer
    features, lengths, durations = _inputs()
    single = loc.predict(features[0, :30], 15.0, QUERIES[:3], top_k=2)
    assert len(single) == 3 and all(len(moments) == 2 for moments in single)
    batch = loc.predict([features[i, :n] for i, n in enumerate(lengths)], list(durations), QUERIES)
    assert len(batch) == len(QUERIES)
    for moments, duration in zip(batch, durations):
        assert len(moments) == 4
        assert all(0 <= m["start"] <= m["end"] <= duration + 1e-5 for m in moments)
    # Alone or in a batch, the same answer; up to float rounding, since the export trims query padding to the
    # batch's longest query.
    alone = loc.predict(features[0, :30], 15.0, QUERIES[0], top_k=2)
    for got, want in zip(alone, single[0]):
        assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda loc, f: loc.predict(f, 10.0, "   "), "query 0 is empty"),
        (lambda loc, f: loc.predict(f[:, :5], 10.0, "door"), r"shape \[T, 12\].*got \[20, 5\]"),
        (lambda loc, f: loc.predict(f, 0.0, "door"), "duration must be a positive number"),
        (lambda loc, f: loc.predict(f, -3, "door"), "duration must be a positive number"),
        (lambda loc, f: loc.predict(f.astype(np.int32), 10.0, "door"), "floating point"),
        (lambda loc, f: loc.predict(np.where(f > 1, np.nan, f), 10.0, "door"), "NaN or Inf"),
        (lambda loc, f: loc.predict(f, 10.0, "door", top_k=9), r"top_k must be an int in \[1, 4\]"),
    ],
)
def test_localizer_errors_say_what_was_expected(localizer, call, message):
    loc, _ = localizer
    features = np.random.default_rng(1).normal(size=(20, 12)).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        call(loc, features)


def test_signature_rejects_a_length_larger_than_the_sequence(localizer):
    _, export_dir = localizer
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="video_length is larger than the feature sequence"):
        serve(
            video_features=tf.zeros([1, 5, 12]),
            video_length=tf.constant([6]),
            duration=tf.constant([2.0]),
            query=tf.constant(["door"]),
        )


def _run_predict(export_dir, features_path, *arguments):
    flags = {"--saved_model": str(export_dir), "--features": str(features_path), "--duration": "10", "--query": "door"}
    flags.update(argument.split("=", 1) for argument in arguments)
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / "predict.py"), *[f"{k}={v}" for k, v in flags.items()]],
        capture_output=True,
        text=True,
        timeout=300,
        # A bare environment, but the same nlvl_tf as this process (PYTHONPATH, where a checkout is tested against
        # another one's install).
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )


def _truncated_npy(path):
    np.save(path, np.zeros((20, 12), np.float32))
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize(
    "arguments, write_features, message",
    [
        (["--query=  "], None, "query 0 is empty"),  # found by the Localizer
        # Bytes that are not UTF-8 reach Python as lone surrogates (os.fsdecode), and are sent back as the same bytes.
        (["--query=the \udcff\udcfe door"], None, "query 0 is not valid UTF-8 text"),
        ([], _truncated_npy, "video.npy: cannot read a .npy array"),  # found by predict.py's reader
    ],
)
def test_predict_command_line_errors_are_one_line_without_traceback(
    localizer, tmp_path, arguments, write_features, message
):
    _, export_dir = localizer
    path = tmp_path / "video.npy"
    (write_features or (lambda p: np.save(p, np.zeros((20, 12), np.float32))))(path)
    result = _run_predict(export_dir, path, *arguments)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-2000:]


@pytest.fixture(scope="module")
def predict_script():
    """experiments/predict.py as a module (its flags defined once in this process): its reader, called directly."""
    spec = importlib.util.spec_from_file_location("predict_script", REPO / "experiments" / "predict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "write_features, length, message",
    [
        (lambda path: np.save(path, np.zeros((20, 12), np.float32)), 99, r"--length=99 must be in \[1, 20\]"),
        (lambda path: path.write_bytes(b""), None, "video.npy: cannot read a .npy array"),  # EOFError
        (lambda path: np.save(path, np.zeros(12, np.float32)), None, r"expected a \[T, D\] array, got shape \[12\]"),
    ],
)
def test_predict_reader_names_the_bad_file_or_length(predict_script, tmp_path, write_features, length, message):
    path = tmp_path / "video.npy"
    write_features(path)
    with pytest.raises(errors.InputError, match=message):
        predict_script.load_features(str(path), length)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"features", "duration"}, None),
        ({"features", "duration", "length"}, None),
        ({"video", "extractor"}, None),
        ({"video", "extractor", "cache_dir"}, None),
        (set(), "give either --features"),
        ({"features", "video", "duration", "extractor"}, "give either --features"),
        ({"features"}, "--features needs --duration"),
        ({"features", "duration", "extractor"}, "--extractor and --cache_dir go with --video"),
        ({"features", "duration", "cache_dir"}, "--extractor and --cache_dir go with --video"),
        ({"video"}, "--video needs --extractor"),
        ({"video", "extractor", "duration"}, "--duration and --length go with --features"),
        ({"video", "extractor", "length"}, "--duration and --length go with --features"),
    ],
)
def test_predict_refuses_flags_that_do_not_go_together(predict_script, given, message):
    if message is None:
        predict_script.check_flags(given)
    else:
        with pytest.raises(errors.InputError, match=message):
            predict_script.check_flags(given)


def test_predict_command_prints_ranked_json(localizer, tmp_path):
    _, export_dir = localizer
    np.save(tmp_path / "video.npy", np.random.default_rng(2).normal(size=(40, 12)).astype(np.float32))
    result = _run_predict(export_dir, tmp_path / "video.npy", "--duration=20", "--query=the person opens", "--top_k=3")
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(answer["moments"]) == 3
    assert [m["score"] for m in answer["moments"]] == sorted((m["score"] for m in answer["moments"]), reverse=True)


# ------------------------------------------------------------------------------ hostile inputs at serving


@pytest.fixture(scope="module")
def signatures(localizer):
    loaded = tf.saved_model.load(str(localizer[1]))
    return loaded.signatures["serving_default"], loaded.signatures["tokenize"]


def _serve_one(serve, features, query, duration=10.0, length=None):
    outputs = serve(
        video_features=tf.constant(features[None], tf.float32),
        video_length=tf.constant([len(features) if length is None else length], tf.int32),
        duration=tf.constant([duration], tf.float32),
        query=tf.constant([query]),
    )
    return {key: outputs[key].numpy()[0] for key in export.SERVING_OUTPUTS}


def _assert_ranked_moments_inside(answer, duration):
    assert np.all(np.isfinite(answer["score"])) and np.all(np.diff(answer["score"]) <= 0)
    assert np.all(0 <= answer["start_time"]) and np.all(answer["start_time"] <= answer["end_time"])
    assert np.all(answer["end_time"] <= duration + 1e-5)


REPEATED = "the person opens the door " * 400  # 10,000 characters, 2,000 words


@pytest.mark.parametrize(
    "query, same_as",
    [
        ("!!! ?", None),  # punctuation only: punctuation tokens (UNK here), answered
        ("zyxw qqqq vvvv", None),  # only unknown words: all UNK, answered
        (REPEATED, " ".join(REPEATED.split()[:10])),  # 10,000 characters: the first M = 10 words count
        (b"the \xff\xfe door \xc3", "the \ufffd\ufffd door \ufffd"),  # not UTF-8: each bad byte reads as U+FFFD
    ],
)
def test_signature_answers_hostile_queries(signatures, query, same_as):
    serve, tokenize = signatures
    features = np.random.default_rng(3).normal(size=(30, 12)).astype(np.float32)
    started = time.perf_counter()
    answer = _serve_one(serve, features, query)
    assert time.perf_counter() - started < 10
    _assert_ranked_moments_inside(answer, 10.0)
    if same_as is not None:
        expected = _serve_one(serve, features, same_as)
        for key in export.SERVING_OUTPUTS:
            np.testing.assert_array_equal(answer[key], expected[key], err_msg=key)
    word_ids = tokenize(query=tf.constant([query]))["word_ids"].numpy()[0]
    assert word_ids.shape == (10,) and word_ids[0] != text.PAD_ID
    if query == "zyxw qqqq vvvv":
        np.testing.assert_array_equal(word_ids[:3], [text.UNK_ID] * 3)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, d, q: (np.where(np.arange(30)[:, None] == 4, np.nan, f), d, q), "NaN or Inf .* batch indices.*0"),
        (lambda f, d, q: (np.where(np.arange(30)[:, None] == 29, np.inf, f), d, q), "NaN or Inf"),
        (lambda f, d, q: (f, d, ""), "query is empty or blank"),
        (lambda f, d, q: (f, d, " \n\t "), "query is empty or blank"),
        (lambda f, d, q: (f, 0.0, q), "duration must be > 0"),
        (lambda f, d, q: (f, -4.0, q), "duration must be > 0"),
    ],
)
def test_signature_refuses_what_it_cannot_answer(signatures, change, message):
    serve, _ = signatures
    features, duration, query = change(np.zeros((30, 12), np.float32), 10.0, "door")
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _serve_one(serve, features, query, duration)


def test_signature_refuses_features_of_another_dimension(signatures):
    serve, _ = signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"video_features must be \[B, T, 12\]"):
        serve(
            video_features=tf.zeros([1, 5, 7]),
            video_length=tf.constant([5]),
            duration=tf.constant([2.0]),
            query=tf.constant(["door"]),
        )


def test_signature_ignores_nan_past_video_length(signatures):
    serve, _ = signatures
    features = np.random.default_rng(4).normal(size=(30, 12)).astype(np.float32)
    padded = np.concatenate([features, np.full((5, 12), np.nan, np.float32)])
    expected = _serve_one(serve, features, "door")
    answer = _serve_one(serve, padded, "door", length=30)
    for key in export.SERVING_OUTPUTS:
        np.testing.assert_array_equal(answer[key], expected[key], err_msg=key)


def test_localizer_answers_a_one_row_and_a_100000_row_video(localizer):
    loc, _ = localizer
    one = loc.predict(np.ones((1, 12), np.float32), 3.5, "door")
    assert (one[0]["start"], one[0]["end"]) == (0.0, 3.5) and one[0]["score"] == pytest.approx(1.0)
    long = np.random.default_rng(5).normal(size=(100_000, 12)).astype(np.float32)
    started = time.perf_counter()
    answer = loc.predict(long, 3600.0, "the person opens the door")
    assert time.perf_counter() - started < 30
    resampled = features_lib.resample(long, 24).numpy()  # what the export does inside
    assert answer == loc.predict(resampled, 3600.0, "the person opens the door")


@pytest.mark.parametrize(
    "features, query, message",
    [
        (np.zeros((0, 12), np.float32), "door", r"features has no rows \(T = 0\)"),
        (np.zeros((20, 12), np.float32), "the door \udcff", "query 0 is not valid UTF-8 text .* character 9"),
    ],
)
def test_localizer_refuses_empty_videos_and_text_that_is_not_utf8(localizer, features, query, message):
    loc, _ = localizer
    with pytest.raises(ValueError, match=message):
        loc.predict(features, 10.0, query)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "saved_model.pb").unlink(),
        lambda d: (d / "saved_model.pb").write_bytes((d / "saved_model.pb").read_bytes()[:100]),
        lambda d: (d / "variables" / "variables.data-00000-of-00001").write_bytes(b"\0" * 10),
        lambda d: (d / "variables" / "variables.index").unlink(),
    ],
)
def test_localizer_names_a_partial_or_corrupt_export(localizer, tmp_path, damage):
    _, export_dir = localizer
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    damage(copy)
    with pytest.raises(ValueError, match=rf"^{copy}: not a readable SavedModel \(partial or corrupt\?\)"):
        localizer_lib.Localizer.load(str(copy))
