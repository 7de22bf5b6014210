"""Ego4D Natural Language Queries (Grauman et al., CVPR 2022): questions about egocentric clips of about 8 minutes.

The data needs a licence, so everything comes from the manual dir (docs/ego4d_nlq.md): `nlq_train.json`,
`nlq_val.json` and `nlq_test_unannotated.json` in format v1 or v2, and `features/<video_uid>.{npy,pt}`, one [N, D]
array per source video at 1.875 rows per second (32-frame windows, stride 16, on 30 fps video).

One example per clip, key `clip_uid`, in the feature spec every NLVL builder shares: `video_id` is the clip_uid,
`duration` the clip's length, `features` the clip's rows cut from its video's features by the official baseline's
rule (`feature_rows`), and one annotation per query with text, times in clip seconds. Ego4D's ids ride along:
`video_uid`, `video_start_sec`, `video_end_sec` per clip; `annotation_uid`, `query_idx` (the position in
`language_queries` before queries without text are skipped), `template`, `annotated` and the unclipped
`clip_start_sec` / `clip_end_sec` per query. The test split keeps its queries with no times (`annotated` false).
"""

import collections
import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from nlvl_tf import errors
from nlvl_tf.data import builder_common as common

# The official features: 32-frame windows with a stride of 16 frames on 30 fps video.
CANONICAL_FPS = 30.0
WINDOW_STRIDE_FRAMES = 16.0
FEATURES_PER_SECOND = CANONICAL_FPS / WINDOW_STRIDE_FRAMES  # 1.875
# TFDS split -> (file in the manual dir, whether its queries have times).
SPLIT_FILES = {
    "train": ("nlq_train.json", True),
    "validation": ("nlq_val.json", True),
    "test": ("nlq_test_unannotated.json", False),
}
TORCH_EXTRA = "pip install 'nlvl-tf[torch]'"

VIDEO_EXTRAS = {
    "video_uid": tfds.features.Text(doc="the Ego4D video the clip was cut from (its features file)"),
    "video_start_sec": common.seconds_feature("where the clip starts in its video, as in the file"),
    "video_end_sec": common.seconds_feature("where the clip ends in its video, as in the file"),
}
ANNOTATION_EXTRAS = {
    "annotation_uid": tfds.features.Text(doc="the annotation the query belongs to"),
    "query_idx": tfds.features.Scalar(np.int32, doc="index in the annotation's language_queries, before skipping"),
    "template": tfds.features.Text(doc="the query template, empty when the file has none"),
    "annotated": tfds.features.Scalar(np.bool_, doc="false in the test split: no times (start = end = 0)"),
    "clip_start_sec": common.seconds_feature("as in the file, unclipped (the official evaluator's); NaN without"),
    "clip_end_sec": common.seconds_feature("as in the file, unclipped (the official evaluator's); NaN without"),
}


@dataclasses.dataclass(frozen=True)
class Query:
    """One query with text; times in clip seconds (start/end clipped to [0, duration], clip_*_sec as written)."""

    annotation_uid: str
    query_idx: int
    query: str
    template: str
    annotated: bool
    clip_start_sec: float
    clip_end_sec: float
    start: float
    end: float
    moment_valid: bool


@dataclasses.dataclass
class Clip:
    clip_uid: str
    video_uid: str
    video_start_sec: float
    video_end_sec: float
    duration: float
    queries: list[Query] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SplitClips:
    """One annotation file's clips in file order, with what was skipped, repaired and flagged."""

    path: str
    version: str
    clips: dict[str, Clip] = dataclasses.field(default_factory=dict)
    queries_in_file: int = 0
    queries_without_text: int = 0
    zero_length_moments: int = 0
    invalid_moments: int = 0
    start_clipped: int = 0
    end_clipped: int = 0

    @property
    def num_queries(self) -> int:
        return sum(len(clip.queries) for clip in self.clips.values())


def feature_rows(video_start_sec: float, video_end_sec: float) -> tuple[int, int]:
    """[first, stop) rows of a clip in its video's features: the official prep's int(t * 30 / 16), inclusive end.

    The rounding is Python's int() of the float64 product, i.e. truncation, at both ends (the baseline's "ceil" for
    the end applies int() first, so it truncates too), and the end row is included: a clip from 8.5333 s to 20 s
    takes rows 15 (15.9999375 truncated) to 37 (37.5 truncated), 23 rows. Copying this rule, in the same float64
    arithmetic, gives the rows the official baseline trains on.
    """
    first = int(video_start_sec * CANONICAL_FPS / WINDOW_STRIDE_FRAMES)
    return first, int(video_end_sec * CANONICAL_FPS / WINDOW_STRIDE_FRAMES) + 1


def _typed(value: Any, kind: type | tuple[type, ...], where: str, field: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise common.AnnotationFormatError(f"{where}: {field} must be a {name}, got {value!r}")
    return value


def _uid(entry: dict, field: str, where: str) -> str:
    value = _typed(common.json_field(entry, field, where), str, where, field)
    if not value:
        raise common.AnnotationFormatError(f"{where}: empty {field}")
    return value


def _object(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise common.AnnotationFormatError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def read_split(path: epath.Path, annotated: bool) -> SplitClips:
    """Parses one NLQ annotation file (v1 or v2; the fields the two share are all that is read).

    Queries whose `query` is missing, null, empty or blank, and null entries of `language_queries`, are skipped
    and counted (`queries_without_text`); `query_idx` still counts them. With `annotated`, a query's
    `clip_start_sec` / `clip_end_sec` are required and clipped to the clip; without (the test file), times are
    ignored. A malformed entry stops with an `AnnotationFormatError` naming the file and the clip.
    """
    data = _object(common.read_json(path), str(path))
    split = SplitClips(str(path), str(data.get("version", "")))
    videos = _typed(common.json_field(data, "videos", str(path)), list, str(path), "videos")
    for video_index, video in enumerate(videos):
        video = _object(video, f"{path}: video {video_index}")
        video_uid = _uid(video, "video_uid", f"{path}: video {video_index}")
        where_video = f"{path}: video {video_uid!r}"
        for clip_index, clip in enumerate(
            _typed(common.json_field(video, "clips", where_video), list, where_video, "clips")
        ):
            clip = _object(clip, f"{where_video} clip {clip_index}")
            parsed = _read_clip(clip, video_uid, f"{where_video} clip {clip_index}", split, annotated)
            split.clips[parsed.clip_uid] = parsed
    return split


def _read_clip(entry: dict, video_uid: str, where: str, split: SplitClips, annotated: bool) -> Clip:
    clip_uid = _uid(entry, "clip_uid", where)
    where = f"{split.path}: clip {clip_uid!r}"
    if clip_uid in split.clips:
        raise common.AnnotationFormatError(f"{where}: clip_uid appears twice in the file")
    start = common.as_number(common.json_field(entry, "video_start_sec", where), where, "video_start_sec")
    end = common.as_number(common.json_field(entry, "video_end_sec", where), where, "video_end_sec")
    if not 0 <= start < end:
        raise common.AnnotationFormatError(f"{where}: needs 0 <= video_start_sec < video_end_sec, got {start}, {end}")
    # Rounded to the nanosecond, the decimal difference: 600.7 - 120.7 is 480.0, not 480.00000000000006.
    clip = Clip(clip_uid, video_uid, start, end, round(end - start, 9))
    seen = set()
    for index, annotation in enumerate(
        _typed(common.json_field(entry, "annotations", where), list, where, "annotations")
    ):
        annotation = _object(annotation, f"{where} annotation {index}")
        annotation_uid = _uid(annotation, "annotation_uid", f"{where} annotation {index}")
        where_annotation = f"{where} annotation {annotation_uid!r}"
        if annotation_uid in seen:
            raise common.AnnotationFormatError(f"{where_annotation}: annotation_uid appears twice in the clip")
        seen.add(annotation_uid)
        queries = _typed(
            common.json_field(annotation, "language_queries", where_annotation),
            list,
            where_annotation,
            "language_queries",
        )
        for query_idx, query in enumerate(queries):
            split.queries_in_file += 1
            parsed = _read_query(
                query, clip, annotation_uid, query_idx, f"{where_annotation} query {query_idx}", split, annotated
            )
            if parsed is None:
                split.queries_without_text += 1
            else:
                clip.queries.append(parsed)
    return clip


def _read_query(
    entry: Any, clip: Clip, annotation_uid: str, query_idx: int, where: str, split: SplitClips, annotated: bool
) -> Query | None:
    """The query, or None if it has no text (counted by the caller)."""
    if entry is None:
        return None
    entry = _object(entry, where)
    text = entry.get("query")
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    text = _typed(text, str, where, "query").strip()
    template = entry.get("template")
    template = "" if template is None else _typed(template, str, where, "template")
    if not annotated:
        return Query(annotation_uid, query_idx, text, template, False, math.nan, math.nan, 0.0, 0.0, False)
    raw_start = common.as_number(common.json_field(entry, "clip_start_sec", where), where, "clip_start_sec")
    raw_end = common.as_number(common.json_field(entry, "clip_end_sec", where), where, "clip_end_sec")
    start, end, start_clipped, end_clipped = common.clip_moment(raw_start, raw_end, clip.duration)
    split.start_clipped += start_clipped
    split.end_clipped += end_clipped
    split.zero_length_moments += raw_start == raw_end
    split.invalid_moments += not start < end
    return Query(annotation_uid, query_idx, text, template, True, raw_start, raw_end, start, end, start < end)


def read_splits(manual_dir: epath.Path) -> dict[str, SplitClips]:
    """Every split's clips from the manual dir's three files (each must be there)."""
    splits = {}
    for split, (file_name, annotated) in SPLIT_FILES.items():
        path = manual_dir / file_name
        if not path.exists():
            raise errors.NotFoundError(f"{path} not found: put the Ego4D NLQ annotation files in the manual dir")
        splits[split] = read_split(path, annotated)
    return splits


def feature_file(feature_dir: epath.Path, video_uid: str) -> epath.Path | None:
    """`<video_uid>.npy` if there is one (read without torch), else `<video_uid>.pt`, else None."""
    for suffix in (".npy", ".pt"):
        path = feature_dir / f"{video_uid}{suffix}"
        if path.exists():
            return path
    return None


def load_video_features(path: epath.Path, feature_dim: int) -> np.ndarray:
    """A video's [N, D] features as float32 from a .npy, or from a .pt tensor with torch (the `torch` extra)."""
    if path.suffix == ".npy":
        return common.load_features(path, feature_dim)
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{path}: reading .pt features needs PyTorch: {TORCH_EXTRA} (or save the array as {path.stem}.npy)"
        ) from None
    try:
        with path.open("rb") as f:
            value = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise errors.InputError(f"{path}: cannot read a torch tensor: {str(error).splitlines()[0]}") from None
    if not isinstance(value, torch.Tensor):
        raise errors.InputError(f"{path}: expected a [N, {feature_dim}] tensor, got {type(value).__name__}")
    value = value.detach()
    return common.checked_features(
        (value.float() if value.dtype == torch.bfloat16 else value).numpy(), path, feature_dim
    )


def clip_examples(item: tuple[str, list[Clip]], feature_dir: str, feature_dim: int) -> Iterator[tuple[str, dict]]:
    """The (clip_uid, example) pairs of one video's clips: its feature file is read once and cut per clip."""
    video_uid, clips = item
    path = feature_file(epath.Path(feature_dir), video_uid)
    features = load_video_features(path, feature_dim)
    for clip in clips:
        first, stop = feature_rows(clip.video_start_sec, clip.video_end_sec)
        if first >= len(features):
            raise errors.InputError(
                f"{path}: clip {clip.clip_uid!r} starts at row {first} (video_start_sec {clip.video_start_sec} x "
                f"{FEATURES_PER_SECOND}) but the video has {len(features)} rows"
            )
        if stop > len(features) + 1:  # one row short is the official features' last window, shifted back
            logging.warning(
                "%s: clip %r ends at row %d but the video has %d rows: the clip keeps %d rows",
                path,
                clip.clip_uid,
                stop,
                len(features),
                len(features) - first,
            )
        yield (
            clip.clip_uid,
            {
                "video_id": clip.clip_uid,
                "duration": clip.duration,
                "features": features[first:stop],
                "video_uid": clip.video_uid,
                "video_start_sec": clip.video_start_sec,
                "video_end_sec": clip.video_end_sec,
                "annotations": [dataclasses.asdict(query) for query in clip.queries],
            },
        )


def split_report(split: SplitClips, missing_clips: list[Clip]) -> dict[str, Any]:
    """What a split's build kept, skipped and flagged, for the log and the dataset's metadata.json."""
    return {
        "file_version": split.version,
        "clips": len(split.clips) - len(missing_clips),
        "queries": split.num_queries - sum(len(clip.queries) for clip in missing_clips),
        "queries_in_file": split.queries_in_file,
        "queries_without_text": split.queries_without_text,
        "zero_length_moments": split.zero_length_moments,
        "invalid_moments": split.invalid_moments,
        "start_clipped": split.start_clipped,
        "end_clipped": split.end_clipped,
        "clips_without_features": len(missing_clips),
        "first_videos_without_features": sorted({c.video_uid for c in missing_clips})[: common.MAX_REPORTED_IDS],
    }


class Builder(common.ScalableBuilder):
    """Ego4D NLQ: one example per clip with its queries, Ego4D ids and the clip's rows of its video's features."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: NLQ v1 and v2 files, times in float64 clip seconds."}
    BUILDER_CONFIGS = [
        common.FeatureConfig(
            name="slowfast",
            feature_dim=2304,
            description="SlowFast 8x8 R101 (Kinetics-400), D=2304, 1.875 per second: the official VSLNet baseline's.",
        ),
        common.FeatureConfig(
            name="omnivore",
            feature_dim=1536,
            description="Omnivore Swin-L video features, D=1536, 1.875 per second (same windows as SlowFast).",
        ),
        common.FeatureConfig(
            name="egovlp",
            feature_dim=256,
            description="EgoVLP video features, D=256, one file per video_uid like the others.",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Ego4D needs a licence (https://ego4d-data.org/docs/start-here/). Put `nlq_train.json`, `nlq_val.json` and
    `nlq_test_unannotated.json` (v1 or v2) in `<manual_dir>/`, and one feature file per video in
    `<manual_dir>/features/`: `<video_uid>.npy` (float [N, D]) or the official `<video_uid>.pt` (a torch tensor;
    reading it needs `pip install 'nlvl-tf[torch]'`, unless a `.npy` of the same uid is there).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=common.video_features(self.builder_config.feature_dim, VIDEO_EXTRAS, ANNOTATION_EXTRAS),
            homepage="https://ego4d-data.org/",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = read_splits(dl_manager.manual_dir)
        feature_dir = dl_manager.manual_dir / common.FEATURES_DIR
        if not feature_dir.is_dir():
            raise errors.NotFoundError(f"{feature_dir} not found: put one <video_uid>.npy or .pt per video there")
        reports, generators = {}, {}
        for name, split in splits.items():
            by_video = collections.defaultdict(list)
            for clip in split.clips.values():
                by_video[clip.video_uid].append(clip)
            missing = [clip for clip in split.clips.values() if feature_file(feature_dir, clip.video_uid) is None]
            reports[name] = split_report(split, missing)
            logging.info("%s %s: %s", self.name, name, reports[name])
            missing_videos = sorted({clip.video_uid for clip in missing})
            missing_set = set(missing_videos)
            left_out = sum(len(clip.queries) for clip in missing)
            common.warn_missing_features(self.name, name, missing_videos, len(by_video), left_out, feature_dir)
            with_features = [(uid, clips) for uid, clips in by_video.items() if uid not in missing_set]
            generators[name] = self._generate_examples(name, with_features, feature_dir)
        self.info.metadata[common.METADATA_REPORT_KEY] = reports
        return generators

    def _generate_examples(self, name: str, videos: list[tuple[str, list[Clip]]], feature_dir: epath.Path):
        make = functools.partial(
            clip_examples, feature_dir=str(feature_dir), feature_dim=self.builder_config.feature_dim
        )
        return self.examples(name, videos, make, num_examples=sum(len(clips) for _, clips in videos))
