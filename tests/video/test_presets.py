"""Presets: the window rule and feature counts at every boundary against the rule written out here, the streaming
windows against the whole-video rule, and the resize / crop / scaling against numpy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf.video import presets, transforms


def authors_windows(num_frames, window):
    """The authors' loop, as their script reads: start = 0, w, 2w... < T; end = min(T - 1, start + w); a short window
    is moved back to start = max(0, end - w)."""
    out, start = [], 0
    while start < num_frames:
        end = min(num_frames - 1, start + window)
        out.append((max(0, end - window) if end - start < window else start, end))
        start += window
    return out


def network_rows(frames):
    """Rows the network gives for `frames` input frames: conv stride 2, pools stride 2 and 2 (SAME: ceil), then the
    2-frame VALID pool; a window below the 9-frame minimum is padded to 9 first."""
    t = max(frames, 9)
    return math.ceil(math.ceil(math.ceil(t / 2) / 2) / 2) - 1


def boundary_counts(window, k_max=5):
    counts = set(range(1, window + 3))
    for k in range(1, k_max + 1):
        counts |= {k * window - 1, k * window, k * window + 1, k * window + 2}
    return sorted(counts)


@pytest.mark.parametrize("window", [24, 16, 64])
def test_window_rule_and_feature_counts_at_every_boundary(window):
    for t in boundary_counts(window):
        bounds = presets.window_bounds(t, window)
        assert bounds == authors_windows(t, window), t
        assert len(bounds) == math.ceil(t / window)
        assert all(end == t - 1 for _, end in bounds[-1:])  # the last frame is never used
        want_rows = sum(network_rows(end - start) for start, end in bounds)
        assert presets.feature_rows(t, window) == want_rows, t
        if window == 24 and t >= 25:
            assert want_rows == 2 * math.ceil(t / 24)  # the authors' [2 * ceil(T / 24), 1024]


def test_short_videos_repeat_their_last_frame_up_to_nine():
    assert presets.window_bounds(1, 24) == [(0, 0)]
    assert presets.network_frames(0, 0) == [0] * 9
    assert presets.network_frames(0, 4) == [0, 1, 2, 3, 3, 3, 3, 3, 3]
    assert presets.network_frames(3, 27) == list(range(3, 27))
    assert [presets.feature_rows(t, 24) for t in (1, 2, 9, 10, 17, 18, 24, 25)] == [1, 1, 1, 1, 1, 2, 2, 4]
    assert presets.window_bounds(25, 24) == [(0, 24), (0, 24)]  # T = 24k + 1 repeats the last window


@pytest.mark.parametrize("window, chunk", [(24, 7), (16, 32), (24, 1), (5, 3)])
def test_streamed_windows_are_the_rule_s_windows(window, chunk):
    for t in boundary_counts(window, k_max=3):
        frames = np.arange(t)
        chunks = (frames[i : i + chunk] for i in range(0, t, chunk))
        streamed = list(presets.stream_windows(chunks, window))
        want = [(start, end, presets.network_frames(start, end)) for start, end in presets.window_bounds(t, window)]
        assert [(start, end, list(got)) for start, end, got in streamed] == want, t


def test_presets_are_configs_with_the_papers_settings():
    charades, tacos, kinetics = (presets.get(name) for name in ("vslnet_charades", "vslnet_tacos_anet", "kinetics"))
    assert (charades.fps, charades.resize, charades.short_side, charades.crop_size, charades.window) == (
        24,
        "upscale_below",
        226,
        224,
        24,
    )
    assert (tacos.fps, tacos.window) == (None, 16)
    assert (kinetics.fps, kinetics.resize, kinetics.short_side, kinetics.crop_size) == (25, "short_side", 256, 224)
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose one of vslnet_charades"):
        presets.get("nope")
    with pytest.raises(ValueError, match="crop_size"):
        presets.Preset("x", 24, "short_side", 256, 100, 24, "")


def bilinear_reference(image, scale, height, width):
    """OpenCV's INTER_LINEAR map for scale f: destination x samples (x + 0.5) / f - 0.5, clamped to the image."""

    def axis(n, size):
        position = np.clip((np.arange(n) + 0.5) / scale - 0.5, 0, size - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, size - 1), position - low

    image = image.astype(np.float64)
    y0, y1, fy = axis(height, image.shape[0])
    x0, x1, fx = axis(width, image.shape[1])
    rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


@pytest.mark.parametrize(
    "preset, size, resized",
    [
        ("vslnet_charades", (180, 320), (226, 402)),  # upscaled: 320 * 226 / 180 = 401.8 -> 402
        ("vslnet_charades", (45, 33), (308, 226)),  # portrait: 45 * 226 / 33 = 308.2 -> 308
        ("vslnet_charades", (229, 301), (229, 301)),  # short side >= 226: left alone
        ("kinetics", (240, 320), (256, 341)),  # 320 * 256 / 240 = 341.3
        ("kinetics", (480, 641), (256, 342)),  # downscaled: 641 * 256 / 480 = 341.9
    ],
)
def test_resize_and_crop_equal_numpy(preset, size, resized):
    preset = presets.get(preset)
    frames = np.random.default_rng(sum(size)).integers(0, 256, (2, *size, 3)).astype(np.uint8)
    height, width, _ = transforms.resized_size(*size, preset)
    assert (int(height), int(width)) == resized
    scale = preset.short_side / min(size) if resized != size else 1.0
    want = []
    for frame in frames:
        image = frame if resized == size else np.floor(bilinear_reference(frame, scale, *resized) + 0.5)
        top, left = round((resized[0] - 224) / 2), round((resized[1] - 224) / 2)  # Python's round: half to even
        want.append(image[top : top + 224, left : left + 224])
    got = transforms.preprocess(tf.constant(frames), preset).numpy()
    assert got.shape == (2, 224, 224, 3) and got.dtype == np.uint8
    difference = np.abs(got.astype(int) - np.stack(want).astype(int))
    # One level at most, rarely: float32 sample positions vs float64 ones, where a value falls on a rounding half.
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.005
    scaled = transforms.to_network_input(tf.constant(got)).numpy()
    np.testing.assert_allclose(scaled, got / 255.0 * 2 - 1, atol=1e-6)


def test_crop_offsets_round_half_to_even():
    frames = np.arange(229 * 227).reshape(1, 229, 227, 1).astype(np.int32)
    got = transforms.centre_crop(tf.constant(frames), 224).numpy()
    # (229 - 224) / 2 = 2.5 -> 2 and (227 - 224) / 2 = 1.5 -> 2
    np.testing.assert_array_equal(got, frames[:, 2:226, 2:226])
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the 224 x 224 crop"):
        transforms.centre_crop(tf.zeros([1, 200, 300, 3]), 224)


def test_the_video_stage_imports_no_later_stage():
    """nlvl_tf/__init__.py: video is the first stage; besides itself it may use the root modules only."""
    import pathlib
    import re

    stages = {"data", "model", "eval", "train", "serve", "demo", "export"}
    for path in pathlib.Path(presets.__file__).parent.glob("*.py"):
        text = path.read_text()
        used = set(re.findall(r"^\s*(?:from|import) nlvl_tf\.(\w+)", text, flags=re.MULTILINE))
        for names in re.findall(r"^\s*from nlvl_tf import ([\w, ]+)", text, flags=re.MULTILINE):
            used |= {name.strip() for name in names.split(",")}
        assert not used & stages, (path.name, used & stages)
