"""Extraction end to end on small generated videos (random I3D weights): the streamed features equal I3D on the
rule's windows; extract_features.py killed mid-run and rerun writes the same files as an uninterrupted run and
reports the corrupt video; the Beam pipeline writes byte-identical files; `tfds build` of a Charades-STA manual dir
made of them works; the extractor SavedModel gives the same features in a process without nlvl_tf."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from nlvl_tf.data import builder_common
from nlvl_tf.video import beam_pipeline, decoding, export, extraction, i3d, presets, transforms, weights
from tests.video import videos

REPO = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
# id: (frames, source fps). At 24 fps: 29 frames (two windows, four rows), 19 (one window of 18, two rows) and
# 4 (one window of 3 frames, repeated to 9: one row).
VIDEOS = {"long": (30, 25), "mid": (20, 24), "short": (5, 30)}
CORRUPT = "broken"


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "random_i3d.weights.h5"
    weights.save(i3d.build(num_classes=11), path)
    return path


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    for video_id, (frames, fps) in VIDEOS.items():
        videos.write_video(folder / f"{video_id}.mp4", frames, fps)
    whole = (folder / "long.mp4").read_bytes()
    (folder / f"{CORRUPT}.mp4").write_bytes(whole[: len(whole) // 2])  # its index is cut off
    (folder / "notes.txt").write_text("not a video: not listed")
    return folder


@pytest.fixture(scope="module")
def extractor(weights_file):
    return extraction.load_extractor(weights_file, "vslnet_charades")


@pytest.fixture(scope="module")
def reference_run(video_dir, weights_file, tmp_path_factory):
    """An uninterrupted in-process extraction of the folder."""
    output = tmp_path_factory.mktemp("reference")
    summary = extraction.extract_videos(str(video_dir), str(output), str(weights_file), "vslnet_charades", batch=2)
    assert (summary.extracted, summary.skipped, list(summary.failed)) == (3, 0, [CORRUPT])
    return output


def test_streamed_features_equal_i3d_on_the_rule_s_windows(video_dir, extractor):
    preset = presets.get("vslnet_charades")
    streamed = {}
    for video_id in ("long", "short"):
        path = video_dir / f"{video_id}.mp4"
        got = extraction.features_from_video(path, extractor, batch=1)
        frames = decoding.read_all(path, 24)
        crops = transforms.preprocess(tf.constant(frames), preset)
        want = []
        for start, end in presets.window_bounds(len(frames), 24):
            window = tf.gather(crops, presets.network_frames(start, end))[tf.newaxis]
            want.append(extractor.model(transforms.to_network_input(window), training=False)["feature"][0])
        want = np.concatenate(want)
        assert got.features.shape == want.shape == (presets.feature_rows(len(frames), 24), 1024)
        assert (got.frames, got.fps, got.windows) == (len(frames), 24.0, len(presets.window_bounds(len(frames), 24)))
        np.testing.assert_allclose(got.features, want, atol=1e-5, rtol=1e-5)
        streamed[video_id] = got.features
    assert got.features.shape[0] == 1 and got.frames == 4  # the short video: one row from 3 frames repeated to 9
    # The whole-video function (the SavedModel's serving_default) cuts the same windows in the graph.
    in_graph = extractor.video_features(tf.constant(decoding.read_all(video_dir / "long.mp4", 24)))
    np.testing.assert_allclose(in_graph.numpy(), streamed["long"], atol=1e-5)
    # vslnet_tacos_anet: every frame at the native rate (20 at 24 fps), 16-frame windows [0, 16) and [3, 19).
    native = extraction.features_from_video(video_dir / "mid.mp4", extractor, preset="vslnet_tacos_anet")
    assert (native.frames, native.fps, native.windows, len(native.features)) == (20, 24.0, 2, 2)
    with pytest.raises(ValueError, match="preprocesses for preset 'vslnet_charades'; preset 'kinetics' resizes"):
        extraction.features_from_video(video_dir / "mid.mp4", extractor, preset="kinetics")


def test_the_window_rule_in_tensorflow_ops_is_the_rule():
    for t in list(range(1, 60)) + [95, 96, 97]:
        starts, length = extraction.window_starts(tf.constant(t), 24)
        bounds = presets.window_bounds(t, 24)
        assert [(int(s), int(s) + int(length)) for s in starts] == bounds, t


def run_extract(video_dir, output, weights_file, **kwargs):
    command = [
        sys.executable,
        str(REPO / "experiments" / "extract_features.py"),
        f"--videos={video_dir}",
        f"--output_dir={output}",
        f"--weights={weights_file}",
        "--preset=vslnet_charades",
        "--batch=2",
    ]
    return subprocess.Popen(command, env=ENV, text=True, **kwargs)


def assert_same_files(output, reference):
    ours = sorted(path.name for path in (output / "features").iterdir())
    assert ours == sorted(f"{video_id}.npy" for video_id in VIDEOS)
    for name in ours:
        assert (output / "features" / name).read_bytes() == (reference / "features" / name).read_bytes(), name
    assert not [path for path in output.rglob("*") if path.name.endswith(".partial")]
    manifest = extraction.read_manifest(output)
    assert sorted(manifest) == sorted(VIDEOS)
    for video_id, record in manifest.items():
        assert record["feature_rows"] == presets.feature_rows(record["frames"], 24)
        assert record["preset"] == "vslnet_charades" and record["fps"] == 24.0
        assert record["weights_sha256"] == extraction.read_manifest(reference)[video_id]["weights_sha256"]
    assert list(extraction.read_failures(output)) == [CORRUPT]


def test_extract_command_killed_then_rerun_writes_the_same_files(video_dir, weights_file, reference_run, tmp_path):
    output = tmp_path / "out"
    process = run_extract(video_dir, output, weights_file, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and not list((output / "features").glob("*.npy")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the extraction ended before it was killed"
    assert len(list((output / "features").glob("*.npy"))) < len(VIDEOS)

    process = run_extract(video_dir, output, weights_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: 1 video(s) could not be read (failures.jsonl lists why): {CORRUPT}"]
    assert f"skipped {CORRUPT}: {video_dir / CORRUPT}.mp4: not a readable video file" in stderr
    assert "failed 1" in stderr and "skipped 0 already done" not in stderr
    assert_same_files(output, reference_run)


def test_beam_pipeline_writes_byte_identical_files(video_dir, weights_file, reference_run, tmp_path):
    output = tmp_path / "beam"
    summary = beam_pipeline.run(str(video_dir), str(output), str(weights_file), "vslnet_charades", batch=2)
    assert (summary.extracted, summary.skipped, list(summary.failed)) == (3, 0, [CORRUPT])
    assert_same_files(output, reference_run)
    again = beam_pipeline.run(str(video_dir), str(output), str(weights_file), "vslnet_charades", batch=2)
    assert (again.extracted, again.skipped) == (0, 3)  # the corrupt one is tried again, and fails again


def test_a_list_file_rerun_keeps_the_other_videos_records(video_dir, weights_file, reference_run, tmp_path):
    output = tmp_path / "copy"
    (output / "features").mkdir(parents=True)
    for name in ("features/long.npy", "features/mid.npy", "features/short.npy", "manifest.jsonl"):
        (output / name).write_bytes((reference_run / name).read_bytes())
    (output / "manifest.jsonl").write_text((reference_run / "manifest.jsonl").read_text() + '{"video_id": "sh')  # torn
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# one video, by a path relative to this file\n\n{os.path.relpath(video_dir, tmp_path)}/mid.mp4\n"
    )
    summary = extraction.extract_videos(str(listing), str(output), str(weights_file), "vslnet_charades", verbose=False)
    assert (summary.extracted, summary.skipped, summary.failed) == (0, 1, {})
    assert (output / "manifest.jsonl").read_text() == (reference_run / "manifest.jsonl").read_text()
    (listing.parent / "mid.mp4").write_bytes(b"")
    listing.write_text(f"{os.path.relpath(video_dir, tmp_path)}/mid.mp4\nmid.mp4\n")
    with pytest.raises(ValueError, match="have the same video id 'mid'"):
        extraction.extract_videos(str(listing), str(output), str(weights_file), "vslnet_charades")


def test_a_folder_made_with_other_weights_is_refused(video_dir, reference_run, tmp_path):
    other = tmp_path / "other.weights.h5"
    weights.save(i3d.build(num_classes=3), other)
    with pytest.raises(ValueError, match="was extracted with weights_sha256 .* use another --output_dir"):
        extraction.extract_videos(str(video_dir), str(reference_run), str(other), "vslnet_charades")


def test_tfds_build_of_a_charades_sta_manual_dir_from_the_features(reference_run, tmp_path):
    manual = tmp_path / "manual"
    (manual / "features").mkdir(parents=True)
    for name in VIDEOS:
        (manual / "features" / f"{name}.npy").write_bytes((reference_run / "features" / f"{name}.npy").read_bytes())
    durations = {video_id: record["duration"] for video_id, record in extraction.read_manifest(reference_run).items()}
    (manual / "charades.json").write_text(json.dumps({v: {"duration": d} for v, d in durations.items()}))
    (manual / "charades_sta_train.txt").write_text(
        "long 0.0 0.8##a person opens a door.\nmid 0.1 0.5##a person sits down.\n"
    )
    (manual / "charades_sta_test.txt").write_text("short 0.0 0.1##a person stands up.\n")
    result = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "tfds"),
            "build",
            str(REPO / "tfds_builders" / "charades_sta"),
            f"--manual_dir={manual}",
            f"--data_dir={tmp_path / 'data'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    builder = tfds.builder_from_directory(
        str(tmp_path / "data" / "charades_sta" / "i3d" / str(builder_common.SPEC_VERSION))
    )
    examples = {
        ex["video_id"].decode(): ex
        for split in ("train", "test")
        for ex in tfds.as_numpy(builder.as_dataset(split=split))
    }
    assert sorted(examples) == sorted(VIDEOS)
    for video_id, example in examples.items():
        np.testing.assert_array_equal(example["features"], np.load(reference_run / "features" / f"{video_id}.npy"))
        assert example["features"].shape[1] == 1024
        assert float(example["duration"]) == pytest.approx(durations[video_id], abs=1e-5)


FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
features = loaded.signatures["serving_default"](frames=tf.constant(np.load(sys.argv[2])))["features"].numpy()
np.save(sys.argv[3], features)
xla = [f.signature.name for f in loaded.signatures["serving_default"].graph.as_graph_def().library.function
       if f.attr["_XlaMustCompile"].b]
with tf.compat.v1.Session(graph=tf.Graph()) as session:  # TF Serving's way: the restore op, then the signature
    signature = tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1]).signature_def["serving_default"]
    session_features = session.run(signature.outputs["features"].name,
                                   {signature.inputs["frames"].name: np.load(sys.argv[2])})
print(json.dumps({"nlvl_tf_imported": any(m.startswith("nlvl_tf") for m in sys.modules), "xla": xla,
                  "session_loader_equal": bool(np.array_equal(session_features, features)),
                  "metadata": json.loads(loaded.signatures["metadata"]()["metadata"].numpy())}))
"""


def test_the_extractor_savedmodel_equals_python_in_a_fresh_process(video_dir, weights_file, reference_run, tmp_path):
    """Against the Python extraction's files (reference_run, batch 2)."""
    export_dir = tmp_path / "extractor"
    export.export(weights_file, "vslnet_charades", export_dir)  # what experiments/export_extractor.py runs
    short = video_dir / "short.mp4"  # one window of 3 frames: the padding to 9 runs in the graph too
    np.save(tmp_path / "frames.npy", decoding.read_all(short, 24))
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(export_dir), str(tmp_path / "frames.npy"), str(tmp_path / "f.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(ENV, PYTHONPATH=""),
        cwd=tmp_path,
    )
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    report = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert report["nlvl_tf_imported"] is False and report["xla"] == [] and report["session_loader_equal"]
    assert report["metadata"]["preset"]["name"] == "vslnet_charades" and report["metadata"]["num_classes"] == 11
    assert report["metadata"]["weights_sha256"] == weights.fingerprint(weights_file)
    np.testing.assert_allclose(
        np.load(tmp_path / "f.npy"), np.load(reference_run / "features" / "short.npy"), atol=1e-5
    )
    loaded = tf.saved_model.load(str(export_dir))  # the helper the serving work calls, on the export
    got = extraction.features_from_video(video_dir / "long.mp4", loaded, batch=2)
    np.testing.assert_allclose(got.features, np.load(reference_run / "features" / "long.npy"), atol=1e-5)
