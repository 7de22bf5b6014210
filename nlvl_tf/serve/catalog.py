"""A built TFDS dataset split as the page's list of videos: ids, durations, ground truth and, on demand, features.

Features stay on disk until a video is picked: the startup scan skips decoding them (a Charades-STA test split holds
about 0.5 GB of them), and a video's features are read back by its index in the split (TFDS slicing), a few kept in
memory. Video files, when given a folder, are matched by id: <dir>/<video_id>.<extension>.
"""

import functools
import os
import threading

import numpy as np
import tensorflow_datasets as tfds

from nlvl_tf import errors

# Files --videos offers to the page's player: what browsers play, plus .avi, the container TACoS ships (unlike
# extraction.VIDEO_EXTENSIONS, what FFmpeg decodes for features).
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".ogv")


def parse_dataset(name):
    """'charades_sta/i3d' or 'charades_sta' -> (dataset, builder config or '')."""
    dataset, _, config = name.partition("/")
    if not dataset or "/" in config:
        raise errors.InputError(f"--dataset must be NAME or NAME/CONFIG (a built TFDS dataset), got {name!r}")
    return dataset, config


class Catalog:
    """The videos of one split; `videos()` lists them, `features(video_id)` reads one video's [T, D] features."""

    def __init__(self, builder, split, videos_dir=None, cached_videos=8):
        if split not in builder.info.splits:
            raise errors.InputError(
                f"dataset {builder.info.full_name} has no split {split!r}; it has {sorted(builder.info.splits.keys())}"
            )
        self.name = builder.info.full_name
        self.split = split
        self.feature_dim = int(builder.info.features["features"].shape[-1])
        self._builder = builder
        self._lock = threading.Lock()
        self._entries = self._scan(videos_dir)
        self._index = {entry["id"]: position for position, entry in enumerate(self._entries)}
        self._cached_features = functools.lru_cache(maxsize=cached_videos)(self._read_features)

    def _scan(self, videos_dir):
        files = _video_files(videos_dir)
        dataset = self._builder.as_dataset(split=self.split, decoders={"features": tfds.decode.SkipDecoding()})
        entries = []
        for example in tfds.as_numpy(dataset):
            video_id = example["video_id"].decode("utf-8")
            annotations = example["annotations"]
            entries.append(
                {
                    "id": video_id,
                    "duration": float(example["duration"]),
                    "rows": len(example["features"]) // (4 * self.feature_dim),
                    "annotations": [
                        {"query": query.decode("utf-8"), "start": float(start), "end": float(end)}
                        for query, start, end in zip(annotations["query"], annotations["start"], annotations["end"])
                    ],
                    "file": files.get(video_id),
                }
            )
        return entries

    def videos(self):
        """[{id, duration, rows, annotations: [{query, start, end}], has_file}], in the split's order."""
        return [
            {key: value for key, value in entry.items() if key != "file"} | {"has_file": bool(entry["file"])}
            for entry in self._entries
        ]

    def __contains__(self, video_id):
        return video_id in self._index

    def video_file(self, video_id):
        """The video's file in --videos, or None."""
        return self._entries[self._index[video_id]]["file"] if video_id in self._index else None

    def features(self, video_id):
        """float32 [T, D] features of a video of the split; KeyError for an unknown id."""
        if video_id not in self._index:
            raise KeyError(video_id)
        with self._lock:  # one reader at a time: concurrent picks of the same video read it once
            return self._cached_features(self._index[video_id])

    def _read_features(self, position):
        dataset = self._builder.as_dataset(split=f"{self.split}[{position}:{position + 1}]")
        (example,) = tfds.as_numpy(dataset)
        return np.asarray(example["features"], np.float32)


def _video_files(videos_dir):
    """{video_id: path} of the video files in a folder (ids are file names without the extension)."""
    if not videos_dir:
        return {}
    if not os.path.isdir(videos_dir):
        raise errors.NotFoundError(f"--videos={videos_dir}: no such folder")
    found = {}
    for name in sorted(os.listdir(videos_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() in VIDEO_EXTENSIONS:
            found.setdefault(stem, os.path.join(videos_dir, name))
    return found
