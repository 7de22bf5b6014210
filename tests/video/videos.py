"""Small test videos written with PyAV whose frames encode their own index, and the index read back.

Each frame is split into 2 x 4 blocks; block b is white when bit b of the frame index is set, black otherwise, so the
index survives lossy coding (levels far from the 128 threshold) for up to 256 frames.
"""

import av
import numpy as np

BITS = 8
HEIGHT, WIDTH = 32, 40


def index_frame(index, height=HEIGHT, width=WIDTH):
    frame = np.zeros((height, width, 3), np.uint8)
    block_h, block_w = height // 2, width // 4
    for bit in range(BITS):
        if index >> bit & 1:
            row, col = divmod(bit, 4)
            frame[row * block_h : (row + 1) * block_h, col * block_w : (col + 1) * block_w] = 255
    return frame


def frame_index(frame):
    """The index `index_frame` encoded, read from the centre of each block."""
    height, width = frame.shape[:2]
    block_h, block_w = height // 2, width // 4
    index = 0
    for bit in range(BITS):
        row, col = divmod(bit, 4)
        centre = frame[
            row * block_h + block_h // 4 : (row + 1) * block_h - block_h // 4,
            col * block_w + block_w // 4 : (col + 1) * block_w - block_w // 4,
        ]
        index |= int(centre.mean() > 128) << bit
    return index


def write_video(path, num_frames, fps=24, pts=None, time_base=None, codec="mpeg4", options=None, frames=None):
    """Writes frames (default: `index_frame(i)`) at `fps`, or at explicit `pts` in `time_base` units (variable
    rate). Returns the pts written, in the stream's time base, and that time base."""
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2] if frames is not None else (HEIGHT, WIDTH)
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
        if time_base is not None:
            stream.codec_context.time_base = stream.time_base = time_base
        for i in range(num_frames):
            image = frames[i] if frames is not None else index_frame(i, stream.height, stream.width)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
