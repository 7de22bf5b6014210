"""Decoding: frames at a requested rate are the ones FFmpeg's `fps` rule selects (the rule written out here, and
FFmpeg's own filter through PyAV), streamed in chunks; each kind of unreadable file is one error naming it."""

import fractions
import math

import av
import numpy as np
import pytest

from nlvl_tf.video import decoding
from tests.video import videos


def decoded_timestamps(path):
    """(pts in seconds of each frame, end of the last frame in seconds) as PyAV reads them, without our code."""
    with av.open(str(path)) as container:
        frames = [(frame.pts, frame.duration, frame.time_base) for frame in container.decode(video=0)]
    seconds = [fractions.Fraction(pts) * tb for pts, _, tb in frames]
    pts, duration, tb = frames[-1]
    return seconds, fractions.Fraction(pts + duration) * tb


def rule_indices(seconds, end, rate):
    """The `fps` rule: slot n in [round(t_0 r), round(end r)) shows the last frame i with round(t_i r) <= n,
    rounding halves up (timestamps here are >= 0)."""
    slot = [math.floor(t * rate + fractions.Fraction(1, 2)) for t in seconds]
    first, last = slot[0], math.floor(end * rate + fractions.Fraction(1, 2))
    return [max(i for i in range(len(slot)) if slot[i] <= n) for n in range(first, last)]


def ffmpeg_filter_indices(path, rate):
    """The frames FFmpeg's own `fps` filter outputs (through PyAV's filter graph)."""
    shown = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        source, fps, sink = graph.add_buffer(template=stream), graph.add("fps", str(rate)), graph.add("buffersink")
        source.link_to(fps)
        fps.link_to(sink)
        graph.configure()

        def drain():
            while True:
                try:
                    shown.append(videos.frame_index(sink.pull().to_ndarray(format="rgb24")))
                except (av.error.BlockingIOError, av.error.EOFError):
                    return

        for frame in container.decode(stream):
            source.push(frame)
            drain()
        source.push(None)
        drain()
    return shown


def indices(path, fps):
    return [videos.frame_index(frame) for frame in decoding.read_all(path, fps)]


@pytest.mark.parametrize(
    "source_fps, num_frames, rate",
    [(24, 40, 24), (25, 37, 24), (30, 45, 24), (24, 40, 25), (25, 37, 25), (30, 45, 25), (30, 45, 10)],
)
def test_frames_at_a_rate_are_the_ones_the_fps_rule_selects(tmp_path, source_fps, num_frames, rate):
    path = tmp_path / "video.mp4"
    videos.write_video(path, num_frames, source_fps)
    seconds, end = decoded_timestamps(path)
    want = rule_indices(seconds, end, rate)
    assert len(want) == round(num_frames / source_fps * rate)
    if source_fps == rate:
        assert want == list(range(num_frames))
    assert indices(path, rate) == want


def test_a_variable_rate_video_is_resampled_by_timestamp_as_ffmpeg_does(tmp_path):
    path = tmp_path / "vfr.mkv"
    steps = np.random.default_rng(0).integers(15, 90, size=40)  # 15-90 ms between frames
    videos.write_video(path, 40, 30, pts=np.cumsum(steps).tolist(), time_base=fractions.Fraction(1, 1000))
    seconds, end = decoded_timestamps(path)
    for rate in (24, 25):
        want = rule_indices(seconds, end, rate)
        assert len(set(want)) < 40 and len(want) > len(set(want))  # some frames dropped, some repeated
        assert indices(path, rate) == want == ffmpeg_filter_indices(path, rate)


def test_the_rule_matches_ffmpegs_filter_on_a_30_fps_source(tmp_path):
    path = tmp_path / "video.mp4"
    videos.write_video(path, 45, 30)
    assert indices(path, 24) == ffmpeg_filter_indices(path, 24)


def test_native_rate_keeps_every_frame_and_chunks_stream(tmp_path):
    path = tmp_path / "video.mp4"
    videos.write_video(path, 30, 30)
    with decoding.VideoReader(path) as reader:
        assert (reader.height, reader.width, reader.native_fps) == (videos.HEIGHT, videos.WIDTH, 30.0)
        chunks = reader.chunks(chunk_size=8)
        first = next(chunks)
        assert first.shape == (8, videos.HEIGHT, videos.WIDTH, 3) and first.dtype == np.uint8
        assert reader.frames_read == 8  # lazy: nothing beyond the first chunk was produced yet
        rest = list(chunks)
    assert [len(chunk) for chunk in rest] == [8, 8, 6]
    frames = np.concatenate([first, *rest])
    assert [videos.frame_index(frame) for frame in frames] == list(range(30))
    np.testing.assert_array_equal(frames, decoding.read_all(path))


def test_unreadable_files_are_one_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    audio = tmp_path / "audio.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    whole = tmp_path / "whole.mp4"
    videos.write_video(whole, 48, 24)  # index at the end of the file
    cut_index = tmp_path / "cut_index.mp4"
    cut_index.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    streamable = tmp_path / "streamable.mp4"
    videos.write_video(streamable, 48, 24, options={"movflags": "faststart"})  # index first, frames after
    cut_frames = tmp_path / "cut_frames.mp4"
    cut_frames.write_bytes(streamable.read_bytes()[: int(streamable.stat().st_size * 0.7)])
    expected = {
        empty: "empty file (0 bytes)",
        text: "not a readable video file (Invalid data found when processing input)",
        audio: "no video stream (streams: audio)",
        cut_index: "not a readable video file",
        cut_frames: "truncated (decoded ",
        tmp_path / "missing.mp4": "no such file",
    }
    for path, message in expected.items():
        with pytest.raises(decoding.VideoReadError) as error:
            decoding.read_all(path, 24)
        assert str(error.value).startswith(f"{path}: {message}"), str(error.value)
        assert "\n" not in str(error.value)
    assert len(decoding.read_all(streamable, 24)) == 48


def test_rate_selector_drops_and_repeats_as_the_filter_does():
    selector = decoding.RateSelector()
    shown = []
    for slot, frame in [(0, "a"), (0, "b"), (2, "c"), (5, "d"), (4, "e")]:
        shown += selector.push(slot, frame)
    shown += selector.close(7)
    # a replaced by b (same slot); b fills 0-1; c fills 2-4; d's slot passes e's, so d is replaced unshown; e 5-6.
    assert shown == ["b", "b", "c", "c", "c", "e", "e"]
    assert decoding.output_slot(5, fractions.Fraction(1, 10), 5) == 3  # 2.5 rounds away from zero
    assert decoding.output_slot(-5, fractions.Fraction(1, 10), 5) == -3
