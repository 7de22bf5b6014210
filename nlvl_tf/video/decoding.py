"""Decoding with PyAV (FFmpeg in its wheel): RGB frames at a constant rate chosen by timestamp, streamed in chunks.

The rate rule is FFmpeg's `fps` filter with its defaults (round=near, eof_action=round, no start_time), the filter the
VSLNet authors ran (`ffmpeg -vf fps=24`):

1. Each decoded frame i gets an output slot q_i = round(pts_i * time_base * rate), half away from zero, in exact
   rational arithmetic; the end of the video gets q_end the same way from the last frame's pts + duration.
2. Slots run from q_0 up to q_end - 1; slot n shows the latest frame whose q_i <= n.

So frames are dropped when the source is faster and repeated when it is slower, a variable-rate source is resampled
by its timestamps, and a video of D seconds gives about D * rate frames. `RateSelector` runs that rule frame by frame
as the filter does (two frames buffered), so a decoded frame is converted to RGB only if it is shown.

Frames come out as uint8 [n, H, W, 3] chunks of at most `chunk_size` frames: a one-hour video never sits in memory.
Errors name the file: a missing, empty or non-video file, a file without a video stream, and a truncated or corrupt
stream each raise `VideoReadError` (a ValueError) with one line saying which and why.
"""

import fractions
import math
import os

import av
import numpy as np


class VideoReadError(ValueError):
    """A video file that cannot be decoded; the message names the file."""


def output_slot(pts, time_base, rate):
    """round(pts * time_base * rate), half away from zero, exactly (FFmpeg's AV_ROUND_NEAR_INF)."""
    value = fractions.Fraction(pts) * time_base * rate
    magnitude = math.floor(abs(value) + fractions.Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


class RateSelector:
    """FFmpeg's `fps` rule as a stream: push (slot, frame) pairs in decoding order, get back the frames to output.

    A frame is held until the next one arrives: the held frame fills every slot before the next frame's slot; a next
    frame whose slot is not after the current one replaces it unshown. `close(end_slot)` fills the slots left up
    to end_slot - 1 with the last frame.
    """

    def __init__(self):
        self._held = None
        self._next_slot = None

    def push(self, slot, frame):
        shown = []
        if self._next_slot is None:
            self._next_slot = slot
        elif self._held is not None:
            shown = self._fill(until=slot)
        self._held = frame
        return shown

    def close(self, end_slot):
        if self._held is None:
            return []
        shown = self._fill(until=end_slot)
        self._held = None
        return shown

    def _fill(self, until):
        count = max(until - self._next_slot, 0)
        self._next_slot += count
        return [self._held] * count


def _rate(fps):
    rate = fractions.Fraction(fps).limit_denominator(1_000_000)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


class VideoReader:
    """One video file, opened for decoding (a context manager).

    Args:
        path: the video file.
        fps: frames per second to take (FFmpeg's `fps` rule, see the module docstring); None keeps every decoded frame.

    Attributes:
        height, width: the frame size (every frame is converted to it).
        native_fps: the stream's average frame rate (None if unknown).
        frames_read: frames produced so far (all of them once `chunks` is exhausted).
    """

    def __init__(self, path, fps=None):
        self.path = os.fspath(path)
        self.rate = None if fps is None else _rate(fps)
        if not os.path.exists(self.path):
            raise VideoReadError(f"{self.path}: no such file")
        if os.path.isfile(self.path) and os.path.getsize(self.path) == 0:
            raise VideoReadError(f"{self.path}: empty file (0 bytes)")
        try:
            self._container = av.open(self.path)
        except av.error.FFmpegError as error:
            raise VideoReadError(f"{self.path}: not a readable video file ({_reason(error)})") from None
        if not self._container.streams.video:
            kinds = sorted({stream.type for stream in self._container.streams}) or ["none"]
            self._container.close()
            raise VideoReadError(f"{self.path}: no video stream (streams: {', '.join(kinds)})")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        context = self._stream.codec_context
        self.height, self.width = context.height, context.width
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.native_fps = float(rate) if rate else None
        self.frames_read = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._container.close()

    @property
    def fps(self):
        """The rate of the frames produced: the requested one, else the native one."""
        return float(self.rate) if self.rate is not None else self.native_fps

    def chunks(self, chunk_size=32):
        """Yields the frames as uint8 [n, H, W, 3] arrays, n <= chunk_size (only the last one shorter)."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        buffer = None
        filled = 0
        for frame in self._shown_frames():
            if buffer is None:
                buffer = np.empty((chunk_size, self.height, self.width, 3), np.uint8)
            buffer[filled] = frame
            filled += 1
            self.frames_read += 1
            if filled == chunk_size:
                yield buffer.copy()
                filled = 0
        if filled:
            yield buffer[:filled].copy()

    def _shown_frames(self):
        """RGB arrays in output order (the same array object repeated where a frame is shown several times)."""
        if self.rate is None:
            for frame in self._decoded():
                yield self._rgb(frame)
            return
        selector = RateSelector()
        time_base = None
        last = None
        converted = (None, None)  # (frame, its RGB array): a repeated frame is converted once
        for frame in self._decoded():
            if frame.pts is None:
                continue  # FFmpeg's filter discards frames without a timestamp too
            time_base = frame.time_base or self._stream.time_base
            last = frame
            for shown in selector.push(output_slot(frame.pts, time_base, self.rate), frame):
                if converted[0] is not shown:
                    converted = (shown, self._rgb(shown))
                yield converted[1]
        if last is None:
            return
        end_slot = output_slot(last.pts + self._duration(last, time_base), time_base, self.rate)
        for shown in selector.close(end_slot):
            if converted[0] is not shown:
                converted = (shown, self._rgb(shown))
            yield converted[1]

    def _duration(self, frame, time_base):
        """The frame's duration in `time_base` units (the nominal frame interval if the file does not say)."""
        if frame.duration:
            return frame.duration
        rate = self._stream.average_rate or self._stream.guessed_rate
        return round(1 / (rate * time_base)) if rate else 0

    def _decoded(self):
        decoded = 0
        try:
            for frame in self._container.decode(self._stream):
                decoded += 1
                yield frame
        except av.error.FFmpegError as error:
            raise VideoReadError(
                f"{self.path}: truncated or corrupt (decoding failed after {decoded} frames: {_reason(error)})"
            ) from None
        expected = self._stream.frames
        if expected and decoded < expected:
            raise VideoReadError(
                f"{self.path}: truncated (decoded {decoded} of the {expected} frames its header lists)"
            )
        if not decoded:
            raise VideoReadError(f"{self.path}: the video stream has no frames")

    def _rgb(self, frame):
        if (frame.height, frame.width) != (self.height, self.width):
            frame = frame.reformat(width=self.width, height=self.height)
        return frame.to_ndarray(format="rgb24")


def _reason(error):
    return getattr(error, "strerror", None) or str(error)


def read_all(path, fps=None):
    """Every frame of a (short) video as one uint8 [T, H, W, 3] array; `VideoReader.chunks` streams a long one."""
    with VideoReader(path, fps) as reader:
        chunks = list(reader.chunks(256))
        if not chunks:
            return np.zeros((0, reader.height, reader.width, 3), np.uint8)
        return np.concatenate(chunks)
