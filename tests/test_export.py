"""SavedModel export: a fresh TensorFlow-only process gets the Keras model's answers from raw strings; Localizer and
predict.py validate their inputs; tokenization inside the export equals the training pipeline's."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import decoding
from nlvl_tf import export
from nlvl_tf import features as features_lib
from nlvl_tf import labels
from nlvl_tf import models
from nlvl_tf import text
from tests import test_models

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY = REPO / "tfds_builders"
QUERIES = ["the person opens the door.", "a man throws the ball after he sits down", "zyxw qqq unknown!",
           "Somebody's cooking an egg", "door", "the person opens the door."]


def dummy_queries():
    """Every query in the builders' dummy data, parsed by each format's rules."""
    found = []
    for path in sorted(DUMMY.glob("charades_sta/dummy_data/**/charades_sta_*.txt")):
        found += [line.split("##", 1)[1] for line in path.read_text(encoding="utf-8").splitlines() if "##" in line]
    for path in sorted(DUMMY.glob("*/dummy_data/**/*.json")):
        if path.name == "charades.json":
            continue
        for item in json.loads(path.read_text(encoding="utf-8")).values():
            found += item["sentences"]
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
    config = test_models.small_config(model, dropout=0.0, max_query_len=10, max_word_len=8, **overrides)
    config.label_method = "iou_argmax"
    config.resample_include_last = True
    return config


def _exported(tmp_path, vocabulary_dir, model_type):
    vocabulary = text.Vocabulary.load(vocabulary_dir)
    config = _config(model_type)
    model = models.build_model(config, len(vocabulary.words), vocabulary.num_chars, vocabulary.vectors)
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
    encoder = text.QueryEncoder(str(vocabulary_dir), config.max_query_len, config.max_word_len)
    word_ids, char_ids = encoder(tf.constant(QUERIES))
    rows, new_lengths = [], []
    for video, length in zip(features, lengths):
        resampled = features_lib.resample(video[:length], config.max_video_len)
        rows.append(features_lib.pad(resampled, config.max_video_len)[0])
        new_lengths.append(int(resampled.shape[0]))
    new_lengths = tf.constant(new_lengths, tf.int32)
    outputs = model({"video_features": tf.stack(rows), "video_length": new_lengths, "word_ids": word_ids,
                     "char_ids": char_ids})
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


@pytest.mark.parametrize("model_type", ["vslbase", "vslnet", "vslnet_l"])
def test_fresh_tensorflow_only_process_gets_the_keras_models_answers(model_type, tmp_path, vocabulary_dir):
    config, model, export_dir = _exported(tmp_path, vocabulary_dir, model_type)
    features, lengths, durations = _inputs()
    np.savez(tmp_path / "inputs.npz", features=features, lengths=lengths, durations=durations)
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(export_dir), str(tmp_path / "inputs.npz"),
                             json.dumps(QUERIES)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    expected = _keras_answers(model, config, vocabulary_dir, features, lengths, durations)
    for key in export.SERVING_OUTPUTS:
        np.testing.assert_allclose(np.array(served[key]), expected[key], atol=1e-5, err_msg=key)
    start, end = np.array(served["start_time"]), np.array(served["end_time"])
    assert np.all(start <= end) and np.all(start >= 0) and np.all(end <= durations[:, None] + 1e-5)
    assert np.all(np.diff(np.array(served["score"]), axis=1) <= 0)


def test_metadata_is_readable_from_the_savedmodel_alone(tmp_path, vocabulary_dir):
    _, _, export_dir = _exported(tmp_path, vocabulary_dir, "vslnet_l")
    loaded = tf.saved_model.load(str(export_dir))
    metadata = json.loads(loaded.signatures["metadata"]()["metadata"].numpy())
    assert metadata["model"] == "vslnet_l" and metadata["max_video_len"] == 24 and metadata["feature_dim"] == 12
    assert metadata["tokenizer_version"] == text.TOKENIZER_VERSION and metadata["top_k"] == 4
    assert metadata["vocabulary_size"] == text.Vocabulary.load(vocabulary_dir).num_words
    assert metadata["config"]["clip_lengths"] == [6, 8, 12]


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
    return export.Localizer.load(str(export_dir)), export_dir


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
    assert loc.predict(features[0, :30], 15.0, QUERIES[0], top_k=2) == single[0]


@pytest.mark.parametrize("call, message", [
    (lambda loc, f: loc.predict(f, 10.0, "   "), "query 0 is empty"),
    (lambda loc, f: loc.predict(f[:, :5], 10.0, "door"), r"shape \[T, 12\].*got \[20, 5\]"),
    (lambda loc, f: loc.predict(f, 0.0, "door"), "duration must be a positive number"),
    (lambda loc, f: loc.predict(f, -3, "door"), "duration must be a positive number"),
    (lambda loc, f: loc.predict(f.astype(np.int32), 10.0, "door"), "floating point"),
    (lambda loc, f: loc.predict(np.where(f > 1, np.nan, f), 10.0, "door"), "NaN or Inf"),
    (lambda loc, f: loc.predict(f, 10.0, "door", top_k=9), r"top_k must be an int in \[1, 4\]"),
])
def test_localizer_errors_say_what_was_expected(localizer, call, message):
    loc, _ = localizer
    features = np.random.default_rng(1).normal(size=(20, 12)).astype(np.float32)
    with pytest.raises(ValueError, match=message):
        call(loc, features)


def test_signature_rejects_a_length_larger_than_the_sequence(localizer):
    _, export_dir = localizer
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="video_length is larger than the feature sequence"):
        serve(video_features=tf.zeros([1, 5, 12]), video_length=tf.constant([6]), duration=tf.constant([2.0]),
              query=tf.constant(["door"]))


@pytest.mark.parametrize("arguments, message", [
    (["--query=  "], "query 0 is empty"),
    (["--duration=0"], "duration must be a positive number"),
    (["--length=99"], "--length=99 must be in [1, 20]"),
    (["--features_dim=5"], "shape [T, 12]"),
])
def test_predict_command_line_errors_are_one_line_without_traceback(localizer, tmp_path, arguments, message):
    _, export_dir = localizer
    dim = 5 if "--features_dim=5" in arguments else 12
    np.save(tmp_path / "video.npy", np.zeros((20, dim), np.float32))
    flags = {"--saved_model": str(export_dir), "--features": str(tmp_path / "video.npy"), "--duration": "10",
             "--query": "door"}
    for argument in arguments:
        if not argument.startswith("--features_dim"):
            key, value = argument.split("=", 1)
            flags[key] = value
    result = subprocess.run([sys.executable, str(REPO / "experiments" / "predict.py"),
                             *[f"{k}={v}" for k, v in flags.items()]],
                            capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin",
                                                                              "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-2000:]


def test_predict_command_prints_ranked_json(localizer, tmp_path):
    _, export_dir = localizer
    np.save(tmp_path / "video.npy", np.random.default_rng(2).normal(size=(40, 12)).astype(np.float32))
    result = subprocess.run([sys.executable, str(REPO / "experiments" / "predict.py"), f"--saved_model={export_dir}",
                             f"--features={tmp_path / 'video.npy'}", "--duration=20", "--query=the person opens",
                             "--top_k=3"], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(answer["moments"]) == 3
    assert [m["score"] for m in answer["moments"]] == sorted((m["score"] for m in answer["moments"]), reverse=True)
