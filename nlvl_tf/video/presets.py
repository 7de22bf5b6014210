"""Preprocessing presets (one frozen config each) and the VSLNet authors' window rule (docs/video.md).

A preset says how a video becomes network input: the frame rate frames are taken at (None: every decoded frame),
how frames are resized (the authors' upscale-only rule or a fixed short side), the centre crop and the window length.
The window rule and the per-window feature count are pure functions of the frame count, so a manifest can be
checked against them without running the network; `stream_windows` cuts the same windows from a stream of frames.
"""

import dataclasses

import numpy as np

from nlvl_tf.video import i3d


@dataclasses.dataclass(frozen=True)
class Preset:
    """How a video becomes I3D input.

    Attributes:
        name: the preset's name (`--preset`).
        fps: frames per second taken from the video (FFmpeg's `fps` rule, decoding.py); None keeps every decoded
            frame (the video's native rate).
        resize: "upscale_below": frames whose short side is below `short_side` are scaled up by short_side / short
            side (both sides, output size rounded), others are left alone (the VSLNet authors' rule);
            "short_side": every frame is scaled so that its short side is `short_side`.
        short_side: the short side of `resize`.
        crop_size: side of the centre crop (offsets round((size - crop) / 2), half to even).
        window: frames per window (the authors' window rule, `window_bounds`).
        reproduces: what the preset is meant to match (docs and the manifest).
    """

    name: str
    fps: float | None
    resize: str = "upscale_below"
    short_side: int = 226
    crop_size: int = 224
    window: int = 24
    reproduces: str = ""

    def __post_init__(self):
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"preset {self.name}: fps must be positive or None, got {self.fps}")
        if self.resize not in ("upscale_below", "short_side"):
            raise ValueError(f"preset {self.name}: resize must be 'upscale_below' or 'short_side', got {self.resize!r}")
        if self.crop_size < i3d.MIN_SIDE or self.short_side < self.crop_size:
            raise ValueError(
                f"preset {self.name}: need {i3d.MIN_SIDE} <= crop_size <= short_side, got {self.crop_size}, "
                f"{self.short_side}"
            )
        if self.window < 1:
            raise ValueError(f"preset {self.name}: window must be >= 1, got {self.window}")


VSLNET_CHARADES = Preset(
    "vslnet_charades",
    fps=24,
    window=24,
    reproduces="the VSLNet authors' Charades-STA features (their prepare/extract_charades.py; rgb_charades.pt for the "
    "paper's 'new' rows, rgb_imagenet.pt for the others)",
)
VSLNET_TACOS_ANET = Preset(
    "vslnet_tacos_anet", fps=None, window=16, reproduces="the VSLNet authors' TACoS and ActivityNet Captions features"
)
KINETICS = Preset(
    "kinetics",
    fps=25,
    resize="short_side",
    short_side=256,
    window=64,
    reproduces="DeepMind's Kinetics input to I3D (25 fps, short side 256, centre crop 224) in I3D's 64-frame clips",
)
PRESETS = {preset.name: preset for preset in (VSLNET_CHARADES, VSLNET_TACOS_ANET, KINETICS)}


def get(name):
    """The preset called `name` (a Preset passes through)."""
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def window_bounds(num_frames, window):
    """The authors' windows over `num_frames` frames, as [start, end) pairs.

    For start = 0, window, 2 * window, ... < T: end = min(T - 1, start + window); a window shorter than `window` is
    moved back to start = max(0, end - window). So there are ceil(T / window) windows, the last frame is never used,
    the last window overlaps the one before it (T = k * window + 1 repeats it exactly), and T <= window gives one
    window of T - 1 frames (empty for T = 1; `network_frames` makes every window at least i3d.MIN_FRAMES long).
    """
    bounds = []
    for start in range(0, num_frames, window):
        end = min(num_frames - 1, start + window)
        if end - start < window:
            start = max(0, end - window)
        bounds.append((start, end))
    return bounds


def network_frames(start, end):
    """The frame indices fed to I3D for the window [start, end): the window itself, with its last frame repeated up to
    i3d.MIN_FRAMES frames when it is shorter (frame `start` alone for an empty window). Short windows thus give one
    feature row instead of none."""
    indices = list(range(start, end)) or [start]
    return indices + [indices[-1]] * (i3d.MIN_FRAMES - len(indices))


def feature_rows(num_frames, window):
    """Feature rows a video of `num_frames` frames gives with `window`-frame windows (0 for no frames)."""
    return sum(i3d.feature_rows(len(network_frames(start, end))) for start, end in window_bounds(num_frames, window))


def stream_windows(chunks, window):
    """The preset's windows over a stream of frame chunks ([n, ...] arrays), as (start, end, frames) with frames the
    network's input indices `network_frames(start, end)` gathered. Holds at most window + chunk + 1 frames."""
    buffer = None  # frames base .. base + len(buffer) - 1
    base = 0
    next_start = 0
    for chunk in chunks:
        buffer = chunk if buffer is None else np.concatenate([buffer, chunk])
        received = base + len(buffer)
        # Window [s, s + window) is whole once frame s + window exists (the rule never uses the last frame).
        while next_start + window < received:
            yield next_start, next_start + window, _gather(buffer, base, next_start, next_start + window)
            next_start += window
        # Keep the frames a later whole window needs and the last window + 1 (the final window's candidates).
        keep_from = min(next_start, received - window - 1)
        if keep_from > base:
            buffer = buffer[keep_from - base :]
            base = keep_from
    if buffer is None:
        return
    start, end = window_bounds(base + len(buffer), window)[-1]
    yield start, end, _gather(buffer, base, start, end)


def _gather(buffer, base, start, end):
    return buffer[np.asarray(network_frames(start, end)) - base]
