"""Speed and memory of video feature extraction (nlvl_tf.video) on this CPU, as JSON lines.

Parts (each runs in a process of its own, so that every peak RSS is its own):
    gemm      the machine's float32 GEMM peak (best of 10 matmuls of 2048, TensorFlow's default threads)
    decode    PyAV decoding of a generated 320 x 240, 30 fps, 60-second H.264 video at 24 fps, and the
              vslnet_charades resize + crop of those frames
    i3d       I3D alone on `--windows` windows of 24 frames at 224 x 224 (random weights: speed does not depend on
              them): frames/s, GFLOP per window (convolutions, 2 per multiply-add, counted from the layer shapes)
              and the fraction of the GEMM peak
    pipeline  features_from_video on the 60-second video (decoding + preprocessing + I3D): frames/s
    memory    peak RSS of the whole pipeline on 20 s and 60 s of video (the real network), and on a 30-minute
              64 x 48 video (upscaled to 226 like any small video) with a stand-in for the network (zeros) by
              default, or with I3D (--long_network=i3d, ~15 minutes here); streaming shows as a peak that does not
              grow with length
    pytorch   (with --pytorch_i3d=path/to/pytorch_i3d.py from piergiaj/pytorch-i3d, not part of this repository)
              their InceptionI3d on the same random state dict: the largest feature difference from ours, and its
              frames/s with the same windows per batch and the same threads

    python benchmarks/extract.py [--part=all] [--windows=4] [--pytorch_i3d=/tmp/pytorch-i3d/pytorch_i3d.py]
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import common
import numpy as np
from absl import app, flags

_PART = flags.DEFINE_enum("part", "all", ["all", "gemm", "decode", "i3d", "pipeline", "memory", "pytorch"], "Part.")
_WINDOWS = flags.DEFINE_integer("windows", 4, "24-frame windows per I3D forward pass.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed forward passes (after one warm-up).")
_LONG_MINUTES = flags.DEFINE_float("long_minutes", 30, "Length of the long video of the memory part.")
_PYTORCH_I3D = flags.DEFINE_string("pytorch_i3d", None, "Path to piergiaj/pytorch-i3d's pytorch_i3d.py.")
_MEMORY_VIDEO = flags.DEFINE_string("memory_video", "20", "Memory part: seconds of 320 x 240 video, or 'long'.")
_LONG_NETWORK = flags.DEFINE_enum(
    "long_network", "stand-in", ["stand-in", "i3d"], "Memory part, long video: the network (i3d: ~15 min for 30 min)."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Where generated videos go (default: a temporary folder).")

WINDOW = 24


def emit(**record):
    print(json.dumps({"benchmark": "extract", **record, "env": common.environment()}), flush=True)


def write_video(path, seconds, fps, height, width):
    """A moving-gradient H.264 (or MPEG-4 for tiny frames) video, generated frame by frame."""
    import av

    if os.path.exists(path):
        return path
    y, x = np.mgrid[0:height, 0:width]
    with av.open(path + ".partial.mp4", "w") as container:
        codec = "libx264" if min(height, width) >= 128 else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, (x + y + i) % 256], axis=-1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(path + ".partial.mp4", path)
    return path


def random_extractor(preset="vslnet_charades"):
    from nlvl_tf.video import extraction, i3d

    return extraction.FeatureExtractor(i3d.build(num_classes=400), preset)


def conv_gflops(frames=WINDOW, side=224):
    """GFLOP (2 per multiply-add) of every convolution of I3D on one [frames, side, side] window."""
    from nlvl_tf.video import i3d

    model = i3d.build(num_classes=400)
    shape, total = (frames, side, side), 0

    def unit_flops(unit, shape):
        out = [-(-size // stride) for size, stride in zip(shape, unit.strides)]
        kernel = unit.kernel.shape
        return out, 2 * np.prod(out) * np.prod(kernel)

    for layer in model.endpoints.values():
        if isinstance(layer, i3d.Unit3D):
            shape, flops = unit_flops(layer, shape)
            total += flops
        elif isinstance(layer, i3d.InceptionModule):
            total += sum(unit_flops(unit, shape)[1] for unit in layer.units.values())
        else:
            shape = [-(-size // stride) for size, stride in zip(shape, layer.strides)]
    return total / 1e9


def part_gemm():
    from flops import matmul_peak_gflops

    emit(part="gemm", matmul_peak_gflops_per_s=matmul_peak_gflops())


def part_decode(video):
    import tensorflow as tf

    from nlvl_tf.video import decoding, presets, transforms

    started = time.perf_counter()
    frames = 0
    with decoding.VideoReader(video, 24) as reader:
        chunks = list(reader.chunks(64))
        frames = reader.frames_read
    decode_s = time.perf_counter() - started
    preset = presets.get("vslnet_charades")
    preprocess = tf.function(lambda x: transforms.preprocess(x, preset))
    preprocess(tf.constant(chunks[0]))
    started = time.perf_counter()
    for chunk in chunks:
        preprocess(tf.constant(chunk)).numpy()
    preprocess_s = time.perf_counter() - started
    emit(
        part="decode",
        video="320x240 H.264 30 fps, 60 s",
        frames_at_24_fps=frames,
        decode_frames_per_s=frames / decode_s,
        preprocess_frames_per_s=frames / preprocess_s,
        peak_rss_mib=common.peak_rss_mib(),
    )


def part_i3d():
    import tensorflow as tf

    extractor = random_extractor()
    windows = np.random.default_rng(0).integers(0, 256, (_WINDOWS.value, WINDOW, 224, 224, 3)).astype(np.uint8)
    windows = tf.constant(windows)
    extractor.crop_features(windows).numpy()
    durations = []
    for _ in range(_REPEATS.value):
        started = time.perf_counter()
        extractor.crop_features(windows).numpy()
        durations.append(time.perf_counter() - started)
    median = float(np.median(durations))
    gflop = conv_gflops()
    peak = _peak()
    emit(
        part="i3d",
        windows_per_batch=_WINDOWS.value,
        median_s=median,
        frames_per_s=_WINDOWS.value * WINDOW / median,
        gflop_per_window=gflop,
        achieved_gflops_per_s=gflop * _WINDOWS.value / median,
        matmul_peak_gflops_per_s=peak,
        fraction_of_peak=gflop * _WINDOWS.value / median / peak,
        peak_rss_mib=common.peak_rss_mib(),
    )


def _peak():
    from flops import matmul_peak_gflops

    return matmul_peak_gflops()


def part_pipeline(video):
    from nlvl_tf.video import extraction

    extractor = random_extractor()
    extractor.preprocess(np.zeros((extraction.CHUNK_FRAMES, 240, 320, 3), np.uint8))  # warm-up: traces the functions
    extractor.crop_features(np.zeros((_WINDOWS.value, WINDOW, 224, 224, 3), np.uint8))
    started = time.perf_counter()
    result = extraction.features_from_video(video, extractor, batch=_WINDOWS.value)
    seconds = time.perf_counter() - started
    emit(
        part="pipeline",
        video="320x240 H.264 30 fps, 60 s",
        frames=result.frames,
        feature_rows=int(result.features.shape[0]),
        seconds=seconds,
        frames_per_s=result.frames / seconds,
        peak_rss_mib=common.peak_rss_mib(),
    )


class _StandIn:
    """The real preprocessing with zeros for the network: decoding, resizing and windowing at their own memory."""

    def __init__(self, preset):
        import tensorflow as tf

        from nlvl_tf.video import presets, transforms

        self.preset = presets.get(preset)
        self.preprocess = tf.function(lambda x: transforms.preprocess(x, self.preset))

    def crop_features(self, windows):
        from nlvl_tf.video import i3d

        return np.zeros((len(windows), i3d.feature_rows(max(windows.shape[1], i3d.MIN_FRAMES)), 1024), np.float32)


def part_memory(video, network):
    from nlvl_tf.video import extraction

    extractor = random_extractor() if network == "i3d" else _StandIn("vslnet_charades")
    started = time.perf_counter()
    result = extraction.features_from_video(video, extractor, batch=_WINDOWS.value)
    emit(
        part="memory",
        video=os.path.basename(video),
        network=network,
        frames=result.frames,
        feature_rows=int(result.features.shape[0]),
        seconds=time.perf_counter() - started,
        peak_rss_mib=common.peak_rss_mib(),
    )


def part_pytorch(path):
    """pytorch-i3d and ours on one random state dict: feature agreement, then speed with the same batch."""
    import importlib.util

    import torch

    from nlvl_tf.video import extraction, weights

    spec = importlib.util.spec_from_file_location("pytorch_i3d", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    theirs = module.InceptionI3d(400, in_channels=3)
    rng = np.random.default_rng(0)
    state = theirs.state_dict()
    for name, value in state.items():
        if name.endswith("running_var") or name.endswith("bn.weight"):
            state[name] = torch.from_numpy(rng.uniform(0.7, 1.3, value.shape).astype(np.float32))
        elif name.endswith(("running_mean", "bn.bias")):
            state[name] = torch.from_numpy(rng.normal(0, 0.1, value.shape).astype(np.float32))
    theirs.load_state_dict(state)
    theirs.eval()
    with tempfile.TemporaryDirectory() as folder:
        torch.save(theirs.state_dict(), os.path.join(folder, "random.pt"))
        ours = extraction.FeatureExtractor(weights.load(os.path.join(folder, "random.pt")), "vslnet_charades")
    windows = rng.integers(0, 256, (_WINDOWS.value, WINDOW, 224, 224, 3)).astype(np.uint8)
    ours_features = ours.crop_features(windows).numpy()
    inputs = torch.from_numpy(windows.astype(np.float32) / 255 * 2 - 1).permute(0, 4, 1, 2, 3).contiguous()
    with torch.no_grad():
        theirs_features = theirs.extract_features(inputs)  # [B, 1024, T', 1, 1]
        theirs.extract_features(inputs)
        durations = []
        for _ in range(_REPEATS.value):
            started = time.perf_counter()
            theirs.extract_features(inputs)
            durations.append(time.perf_counter() - started)
    theirs_features = theirs_features[:, :, :, 0, 0].permute(0, 2, 1).numpy()
    median = float(np.median(durations))
    emit(
        part="pytorch",
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        windows_per_batch=_WINDOWS.value,
        max_abs_feature_difference=float(np.abs(theirs_features - ours_features).max()),
        feature_std=float(ours_features.std()),
        median_s=median,
        frames_per_s=_WINDOWS.value * WINDOW / median,
    )


def main(argv):
    del argv
    workdir = _WORKDIR.value or tempfile.mkdtemp(prefix="extract_benchmark_")
    os.makedirs(workdir, exist_ok=True)
    part = _PART.value
    if part == "all":
        video = write_video(os.path.join(workdir, "clip_320x240_60s.mp4"), 60, 30, 240, 320)
        runs = [["gemm"], ["decode"], ["i3d"], ["pipeline"]]
        runs += [["memory", "--memory_video=20"], ["memory", "--memory_video=60"], ["memory", "--memory_video=long"]]
        if _PYTORCH_I3D.value:
            runs.append(["pytorch"])
        for name, *extra in runs:
            command = [sys.executable, __file__, f"--part={name}", f"--workdir={workdir}", *extra]
            command += [f"--windows={_WINDOWS.value}", f"--repeats={_REPEATS.value}"]
            command += [f"--long_minutes={_LONG_MINUTES.value}", f"--long_network={_LONG_NETWORK.value}"]
            if _PYTORCH_I3D.value:
                command.append(f"--pytorch_i3d={_PYTORCH_I3D.value}")
            subprocess.run(command, check=True)
        return
    video = os.path.join(workdir, "clip_320x240_60s.mp4")
    if part in ("decode", "pipeline") and not os.path.exists(video):  # a part run on its own writes its clip
        write_video(video, 60, 30, 240, 320)
    if part == "gemm":
        part_gemm()
    elif part == "decode":
        part_decode(video)
    elif part == "i3d":
        part_i3d()
    elif part == "pipeline":
        part_pipeline(video)
    elif part == "memory":
        which = _MEMORY_VIDEO.value
        if which == "long":
            minutes = _LONG_MINUTES.value
            long_video = write_video(os.path.join(workdir, f"long_64x48_{minutes:g}min.mp4"), minutes * 60, 24, 48, 64)
            part_memory(long_video, _LONG_NETWORK.value)
        else:
            seconds = int(which)
            part_memory(
                write_video(os.path.join(workdir, f"clip_320x240_{seconds}s.mp4"), seconds, 30, 240, 320), "i3d"
            )
    elif part == "pytorch":
        part_pytorch(_PYTORCH_I3D.value)


if __name__ == "__main__":
    app.run(main)
