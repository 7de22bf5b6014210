"""Time to the first answer about a video file: decoding, feature extraction and localization, each timed.

Writes a test video (`--seconds` long, `--width` x `--height` at `--fps`, H.264 in MP4, moving shapes), exports an
I3D extractor (random weights, the `--preset` preset) and a localizer with the authors' Charades-STA settings at
n = `--n` (random weights: speed does not depend on the values), then in this process:

    decode       PyAV decoding at the preset's frame rate alone (frames read and converted to RGB)
    extract      features_from_video: decoding, the preset's resize and crop, I3D (decode included)
    localize     the first Localizer.predict on those features (includes TensorFlow's first-call set-up)
    first answer extract + localize: a new video's first query, the SavedModels already loaded
    cached query Localizer.predict_video on the same file again: a content hash lookup and the localizer

Prints one JSON object on its last line (seconds, and the load times of both SavedModels).

    python benchmarks/video_to_moments.py [--seconds=30] [--width=640 --height=360 --fps=30] [--n=128]
"""

import json
import tempfile
import time

import av
import common
import numpy as np
import serving
from absl import app, flags

FLAGS = flags.FLAGS  # --model, --n, --xla_loop, --intra_op_threads are serving.py's flags
_SECONDS = flags.DEFINE_float("seconds", 30.0, "Length of the test video.")
_WIDTH = flags.DEFINE_integer("width", 640, "Frame width of the test video.")
_HEIGHT = flags.DEFINE_integer("height", 360, "Frame height of the test video.")
_FPS = flags.DEFINE_integer("fps", 30, "Frame rate of the test video.")
_PRESET = flags.DEFINE_string("preset", "vslnet_charades", "The extractor's preprocessing preset.")
_QUERY = "a person opens the door and takes a book from the shelf."


def write_test_video(path, seconds, width, height, fps):
    """H.264 MP4 of moving bright discs over a gradient (compresses like camera footage, unlike noise)."""
    rows, cols = np.mgrid[0:height, 0:width]
    background = (64 + 64 * cols / width)[..., None] * np.array([1.0, 0.8, 0.6])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            t = index / fps
            image = background.copy()
            for k in range(3):
                cx = width * (0.5 + 0.4 * np.sin(0.7 * t + 2 * k))
                cy = height * (0.5 + 0.35 * np.cos(0.9 * t + k))
                image[(cols - cx) ** 2 + (rows - cy) ** 2 < (height / 8) ** 2] = (230, 200 - 60 * k, 90 + 60 * k)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main(argv):
    del argv
    import tensorflow as tf  # noqa: PLC0415 (after absl parsed the flags)

    from nlvl_tf.serve import localizer as localizer_lib  # noqa: PLC0415
    from nlvl_tf.video import decoding, i3d, presets, weights  # noqa: PLC0415
    from nlvl_tf.video import export as extractor_export  # noqa: PLC0415

    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    with tempfile.TemporaryDirectory() as directory:
        video = f"{directory}/video.mp4"
        write_test_video(video, _SECONDS.value, _WIDTH.value, _HEIGHT.value, _FPS.value)
        weights.save(i3d.build(num_classes=400), f"{directory}/i3d.weights.h5")
        extractor_export.export(f"{directory}/i3d.weights.h5", _PRESET.value, f"{directory}/extractor")
        export_dir, _ = serving.export_benchmark_model(FLAGS.model, FLAGS.n, directory, FLAGS.xla_loop)
        localizer, load_s = timed(
            localizer_lib.Localizer.load, export_dir, extractor=f"{directory}/extractor", cache_dir=None
        )
        preset = presets.get(_PRESET.value)

        def decode():
            with decoding.VideoReader(video, preset.fps) as reader:
                return sum(len(chunk) for chunk in reader.chunks(32))

        frames, decode_s = timed(decode)
        extracted, extract_s = timed(localizer.video_features, video)
        features, duration = extracted
        _, localize_s = timed(localizer.predict, features, duration, _QUERY)
        _, localize_warm_s = timed(localizer.predict, features, duration, _QUERY)
        cached = [timed(localizer.predict_video, video, _QUERY)[1] for _ in range(20)]
    print(
        json.dumps(
            {
                "benchmark": "video_to_moments",
                "video": {"seconds": _SECONDS.value, "size": [_WIDTH.value, _HEIGHT.value], "fps": _FPS.value},
                "preset": _PRESET.value,
                "frames_decoded": frames,
                "feature_rows": int(len(features)),
                "model": FLAGS.model,
                "n": FLAGS.n,
                "xla_loop": FLAGS.xla_loop,
                "load_savedmodels_s": load_s,
                "decode_s": decode_s,
                "extract_s": extract_s,
                "extract_without_decode_s": extract_s - decode_s,
                "localize_first_s": localize_s,
                "localize_warm_s": localize_warm_s,
                "first_answer_s": extract_s + localize_s,
                "cached_query_median_s": float(np.median(cached)),
                "peak_rss_mib": common.peak_rss_mib(),
                "env": common.environment(),
            }
        )
    )


if __name__ == "__main__":
    app.run(main)
