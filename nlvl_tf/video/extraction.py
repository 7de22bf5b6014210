"""Video files to I3D features: one video (`features_from_video`) or a folder of them (`extract_videos`).

A video streams through in bounded memory: decoded chunks are cropped to uint8 224 x 224 frames, cut into the
preset's windows as frames arrive (`presets.stream_windows` holds about one window), and windows go through I3D
`batch` at a time. Features of one video are `[feature_rows, 1024]` float32 (presets.feature_rows).

`extract_videos` writes `<output_dir>/features/<video_id>.npy` (the layout the TFDS builders' manual_dir expects) and
one line per video to `<output_dir>/manifest.jsonl`. A rerun skips the videos already done, so a killed run resumes;
each .npy is written under a temporary name and renamed, so no half-written file is ever left. An unreadable video is
reported by name, skipped and counted.
"""

import dataclasses
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.video import decoding, i3d, presets, transforms
from nlvl_tf.video import weights as weights_lib

FEATURES_DIR = "features"
MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
# Files a --videos folder lists for extraction: containers FFmpeg decodes (unlike catalog.VIDEO_EXTENSIONS, the few
# a browser plays).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts")
CHUNK_FRAMES = 32


class FeatureExtractor(tf.Module):
    """I3D with a preset's preprocessing: uint8 frames in, features out (the graph the extractor SavedModel holds).

    Functions (each a tf.function with a fixed signature, so the export and Python run the same graph):
        preprocess(frames uint8 [N, H, W, 3]) -> uint8 [N, crop, crop, 3], the preset's resize and centre crop.
        crop_features(windows uint8 [B, L, crop, crop, 3]) -> float32 [B, F, 1024]; windows shorter than
            i3d.MIN_FRAMES get their last frame repeated.
        window_features(windows uint8 [B, L, H, W, 3]) -> float32 [B, F, 1024]: preprocess, then crop_features.
        video_features(frames uint8 [T, H, W, 3]) -> float32 [rows, 1024]: a whole (short) video, the preset's
            windows cut in the graph, one window at a time.
    """

    def __init__(self, model, preset):
        super().__init__(name="i3d_extractor")
        self.model = model
        self.preset = presets.get(preset)
        crop = self.preset.crop_size
        frames = tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames")
        self.preprocess = tf.function(self._preprocess, input_signature=[frames])
        self.crop_features = tf.function(
            self._crop_features, input_signature=[tf.TensorSpec([None, None, crop, crop, 3], tf.uint8, name="windows")]
        )
        self.window_features = tf.function(
            self._window_features,
            input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="windows")],
        )
        self.video_features = tf.function(self._video_features, input_signature=[frames])

    def _preprocess(self, frames):
        return transforms.preprocess(frames, self.preset)

    def _crop_features(self, windows):
        length = tf.shape(windows)[1]
        tf.debugging.assert_positive(length, message="windows must hold at least one frame")
        indices = tf.minimum(tf.range(tf.maximum(length, i3d.MIN_FRAMES)), length - 1)
        frames = transforms.to_network_input(tf.gather(windows, indices, axis=1), self.model.compute_dtype)
        return tf.cast(self.model(frames, training=False)["feature"], tf.float32)

    # The functions below call crop_features, a tf.function: the saved graph holds the network once, not per function.
    def _window_features(self, windows):
        shape = tf.shape(windows)
        crops = self.preprocess(tf.reshape(windows, tf.concat([[-1], shape[2:]], axis=0)))
        return self.crop_features(tf.reshape(crops, tf.concat([shape[:2], tf.shape(crops)[1:]], axis=0)))

    def _video_features(self, frames):
        tf.debugging.assert_positive(tf.shape(frames)[0], message="the video has no frames")
        crops = self.preprocess(frames)
        starts, length = window_starts(tf.shape(frames)[0], self.preset.window)

        def one_window(start):  # an empty window (a 1-frame video) is its start frame, repeated
            return self.crop_features(crops[tf.newaxis, start : start + tf.maximum(length, 1)])[0]

        features = tf.map_fn(
            one_window,
            starts,
            fn_output_signature=tf.TensorSpec([None, i3d.FEATURE_DIM], tf.float32),
            parallel_iterations=1,
        )
        return tf.reshape(features, [-1, i3d.FEATURE_DIM])

    def metadata(self):
        """What the extractor is: its preset and classifier width (JSON-ready)."""
        return {"preset": dataclasses.asdict(self.preset), "num_classes": self.model.num_classes}


def window_starts(num_frames, window):
    """The window rule (presets.window_bounds) as TensorFlow ops: (start of each window, the windows' common length)."""
    starts = tf.range(0, num_frames, window)
    ends = tf.minimum(num_frames - 1, starts + window)
    starts = tf.where(ends - starts < window, tf.maximum(0, ends - window), starts)
    return starts, tf.minimum(num_frames - 1, window)


def load_extractor(weights_path, preset, dtype=None):
    """A FeatureExtractor with the weights in `weights_path` (any format `weights.load` reads)."""
    return FeatureExtractor(weights_lib.load(weights_path, dtype=dtype), preset)


@dataclasses.dataclass
class VideoFeatures:
    """The features of one video and what they were made from."""

    features: np.ndarray  # [feature_rows, 1024] float32
    frames: int  # frames decoded at `fps`
    fps: float
    windows: int

    @property
    def duration(self):
        """Seconds of video the frames cover (frames / fps)."""
        return self.frames / self.fps if self.fps else 0.0


def _extractor_parts(extractor, preset):
    """(preprocess, crop_features, preset) of a FeatureExtractor or a loaded extractor SavedModel. Another preset
    than the extractor's may change the rate and the windows, not the preprocessing in the extractor's graph."""
    own = getattr(extractor, "preset", None)
    if own is None and hasattr(extractor, "metadata"):  # a loaded SavedModel records its preset
        own = presets.Preset(**json.loads(np.asarray(extractor.metadata()["metadata"]).item())["preset"])
    preset = presets.get(preset if preset is not None else own)
    if own is not None and _preprocessing(own) != _preprocessing(preset):
        raise errors.InputError(
            f"the extractor preprocesses for preset {own.name!r}; preset {preset.name!r} resizes or crops otherwise"
        )
    return _single_output(extractor.preprocess), _single_output(extractor.crop_features), preset


def _preprocessing(preset):
    return preset.resize, preset.short_side, preset.crop_size


def _single_output(function):
    """The function, with an exported endpoint's {name: tensor} answer unwrapped to the tensor."""

    def call(inputs):
        outputs = function(inputs)
        return next(iter(outputs.values())) if isinstance(outputs, dict) else outputs

    return call


def features_from_video(path, extractor, preset=None, batch=4):
    """A video file -> VideoFeatures, streaming (decoding in Python, the rest in `extractor`'s graph).

    Args:
        path: the video file.
        extractor: a FeatureExtractor, or an extractor SavedModel loaded with tf.saved_model.load (export.py).
        preset: a preset or its name (default: the extractor's own).
        batch: windows per forward pass.
    """
    preprocess, crop_features, preset = _extractor_parts(extractor, preset)
    if batch < 1:
        raise errors.InputError(f"batch must be >= 1, got {batch}")
    outputs, pending = [], []
    windows = 0

    def run_pending():
        if pending:
            outputs.append(np.asarray(crop_features(np.stack(pending))))
            pending.clear()

    with decoding.VideoReader(path, preset.fps) as reader:
        crops = (np.asarray(preprocess(tf.constant(chunk))) for chunk in reader.chunks(CHUNK_FRAMES))
        for _, _, frames in presets.stream_windows(crops, preset.window):
            windows += 1
            if pending and len(frames) != len(pending[0]):  # a batch holds windows of one length
                run_pending()
            pending.append(frames)
            if len(pending) == batch:
                run_pending()
        run_pending()
        if not reader.frames_read:
            raise decoding.VideoReadError(f"{reader.path}: no frames at {preset.fps} fps")
        features = np.concatenate([out.reshape(-1, i3d.FEATURE_DIM) for out in outputs]).astype(np.float32)
        return VideoFeatures(features, reader.frames_read, reader.fps, windows)


# ------------------------------------------------------------------------------------------------ folders of videos


def list_videos(videos):
    """{video_id: path} from a directory (its video files, by extension) or a list file (one path per line, relative
    to the list file's folder; blank lines and lines starting with # are skipped). The id is the file name without
    its extension; two files with one id are an error."""
    if os.path.isdir(videos):
        paths = [
            os.path.join(videos, name) for name in sorted(os.listdir(videos)) if name.lower().endswith(VIDEO_EXTENSIONS)
        ]
    elif os.path.isfile(videos):
        folder = os.path.dirname(os.path.abspath(videos))
        with open(videos, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
        paths = [os.path.join(folder, line) for line in lines if line and not line.startswith("#")]
    else:
        raise errors.NotFoundError(f"--videos={videos}: no such directory or list file")
    found = {}
    for path in paths:
        video_id = os.path.splitext(os.path.basename(path))[0]
        if video_id in found:
            raise errors.InputError(f"{found[video_id]} and {path} have the same video id {video_id!r}")
        found[video_id] = path
    if not found:
        raise errors.InputError(f"--videos={videos}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return found


def feature_path(output_dir, video_id):
    return os.path.join(output_dir, FEATURES_DIR, f"{video_id}.npy")


def save_features(path, features):
    """np.save under a temporary name in the same folder, then rename: the file is whole or absent (tf.io.gfile, so
    the folder may be on GCS or another filesystem TensorFlow knows)."""
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "wb") as f:
        np.save(f, features, allow_pickle=False)
    tf.io.gfile.rename(partial, path, overwrite=True)


def extract_one(extractor, video_id, path, output_dir, batch, run_info):
    """Extracts one video to its .npy; returns its manifest record (a VideoReadError propagates)."""
    started = time.perf_counter()
    result = features_from_video(path, extractor, batch=batch)
    save_features(feature_path(output_dir, video_id), result.features)
    return {
        "video_id": video_id,
        "path": path,
        **run_info,
        "fps": result.fps,
        "frames": result.frames,
        "windows": result.windows,
        "feature_rows": int(result.features.shape[0]),
        "duration": round(result.duration, 6),
        "seconds": round(time.perf_counter() - started, 3),
    }


def run_info(preset, weights_path):
    """The manifest fields every video of one extraction shares."""
    return {
        "preset": preset.name,
        "weights": os.path.basename(os.path.normpath(weights_path)),
        "weights_sha256": weights_lib.fingerprint(weights_path),
    }


def read_manifest(output_dir):
    """{video_id: record} of the manifest's whole lines (a line cut by a kill is dropped)."""
    path = os.path.join(output_dir, MANIFEST)
    records = {}
    if not tf.io.gfile.exists(path):
        return records
    with tf.io.gfile.GFile(path, "r") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            records[record["video_id"]] = record
    return records


def write_manifest(output_dir, records):
    """Rewrites the manifest with `records` (sorted by video id), whole or not at all."""
    _write_lines(os.path.join(output_dir, MANIFEST), [records[video_id] for video_id in sorted(records)])


def write_failures(output_dir, failed):
    """`failures.jsonl`: one {"video_id", "error"} line per video of the last run that could not be read."""
    lines = [{"video_id": video_id, "error": failed[video_id]} for video_id in sorted(failed)]
    _write_lines(os.path.join(output_dir, FAILURES), lines)


def read_failures(output_dir):
    """{video_id: error} from `failures.jsonl`."""
    path = os.path.join(output_dir, FAILURES)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path, "r") as f:
        return {record["video_id"]: record["error"] for record in map(json.loads, f)}


def _write_lines(path, records):
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        f.write("".join(json.dumps(record, sort_keys=True) + "\n" for record in records))  # creates an empty file too
    tf.io.gfile.rename(partial, path, overwrite=True)


def pending_videos(videos, output_dir, info):
    """(the manifest records to keep, {video_id: path} of `videos` still to do). A video is done when it has a
    manifest line and a .npy; records of other videos in the folder are kept too. A manifest made with another preset
    or other weights is refused rather than mixed with."""
    records = read_manifest(output_dir)
    for record in records.values():
        for key in ("preset", "weights_sha256"):
            if record.get(key) != info[key]:
                raise errors.InputError(
                    f"{os.path.join(output_dir, MANIFEST)}: {record['video_id']} was extracted with {key} "
                    f"{record.get(key)!r}, not {info[key]!r}: use another --output_dir"
                )
    kept = {
        video_id: record
        for video_id, record in records.items()
        if tf.io.gfile.exists(feature_path(output_dir, video_id))
    }
    return kept, {video_id: path for video_id, path in videos.items() if video_id not in kept}


@dataclasses.dataclass
class Summary:
    extracted: int
    skipped: int
    failed: dict  # {video_id: error message}


def extract_videos(videos, output_dir, weights_path, preset, batch=4, verbose=True):
    """Extracts every video of `videos` (a directory or list file) into `output_dir`; returns a Summary.

    Prints a progress bar and one line per unreadable video (to stderr) when `verbose`.
    """
    preset = presets.get(preset)
    found = list_videos(videos)
    info = run_info(preset, weights_path)
    tf.io.gfile.makedirs(os.path.join(output_dir, FEATURES_DIR))
    records, todo = pending_videos(found, output_dir, info)
    write_manifest(output_dir, records)  # drops lines cut by a kill and records of videos whose .npy is gone
    failed = {}
    if todo:
        extractor = load_extractor(weights_path, preset)
        progress = Progress(len(todo), verbose)
        manifest_path = os.path.join(output_dir, MANIFEST)
        for position, (video_id, path) in enumerate(todo.items(), 1):
            try:
                record = extract_one(extractor, video_id, path, output_dir, batch, info)
            except decoding.VideoReadError as error:
                failed[video_id] = str(error)
                progress.message(f"skipped {video_id}: {error}")
            else:
                records[video_id] = record
                with tf.io.gfile.GFile(manifest_path, "a") as f:
                    f.write(json.dumps(record, sort_keys=True) + "\n")
            progress.update(position, len(failed), record["frames"] if video_id in records else 0)
        progress.done()
    write_manifest(output_dir, records)
    write_failures(output_dir, failed)
    return Summary(extracted=len(todo) - len(failed), skipped=len(found) - len(todo), failed=failed)


class Progress:
    """One progress line on stderr: rewritten in place on a terminal, else printed every `every_s` seconds (logs)."""

    def __init__(self, total, verbose=True, every_s=30.0):
        self.total, self.verbose, self.every_s = total, verbose, every_s
        self.started = self.printed = time.monotonic()
        self.frames = 0
        self.line = ""
        self.tty = sys.stderr.isatty()

    def update(self, position, failed, frames):
        self.frames += frames
        elapsed = time.monotonic() - self.started
        left = elapsed / position * (self.total - position)
        self.line = (
            f"extracting: {position}/{self.total} videos, {failed} failed, "
            f"{self.frames / max(elapsed, 1e-9):.1f} frames/s, {left:.0f} s left"
        )
        if self.verbose and self.tty:
            print(f"\r{self.line}\033[K", end="", file=sys.stderr, flush=True)
        elif self.verbose and time.monotonic() - self.printed >= self.every_s:
            print(self.line, file=sys.stderr, flush=True)
            self.printed = time.monotonic()

    def message(self, text):
        if self.verbose:
            print(("\r\033[K" if self.tty else "") + text, file=sys.stderr, flush=True)

    def done(self):
        if self.verbose and self.line:
            print(("\r" if self.tty else "") + self.line + ("\033[K" if self.tty else ""), file=sys.stderr, flush=True)


def report(summary):
    """Prints the summary line; raises (a user error: exit status 2) when any video failed."""
    print(
        f"extracted {summary.extracted}, skipped {summary.skipped} already done, failed {len(summary.failed)}",
        file=sys.stderr,
    )
    if summary.failed:
        names = ", ".join(sorted(summary.failed)[:5]) + (", ..." if len(summary.failed) > 5 else "")
        raise errors.InputError(f"{len(summary.failed)} video(s) could not be read ({FAILURES} lists why): {names}")
