"""What the annotation-based NLVL builders share: feature spec, configs, parsing rules, feature checks.

The three real datasets (Charades-STA, ActivityNet Captions, TACoS) differ only in how their
annotation files are laid out. Everything after parsing is the same and lives here: times are
clipped to [0, duration] and counted, records with start >= end are kept but flagged
(`moment_valid`), one example is written per video with its `<manual_dir>/features/<video_id>.npy`,
and videos without a feature file are counted and reported, never dropped in silence.

It lives in the installed library, so a builder (which `tfds build tfds_builders/<name>` imports from its folder)
imports it by package path: `from nlvl_tf.data import builder_common`.
"""

import abc
import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from nlvl_tf import errors

FEATURES_DIR = "features"
# Times within this many seconds outside [0, duration] are float noise (ActivityNet stores
# 86.29 vs 86.28999999999999): they are clipped like the rest but not counted as repairs.
TIME_TOLERANCE_S = 1e-6
# How many video ids a warning about missing feature files names.
MAX_REPORTED_IDS = 10
METADATA_REPORT_KEY = "build_report"
# Byte copies of the public annotation files (2D-TAN's data folder in microsoft/VideoX, pinned).
VIDEOX_2D_TAN_DATA = (
    "https://raw.githubusercontent.com/microsoft/VideoX/9058921b6b41a5297b1c348c46635352e60e5e0c/2D-TAN/data"
)


# The release of the NLVL builders that share the feature spec below (Ego4D NLQ starts at its own 1.0.0).
SPEC_VERSION = tfds.core.Version("1.1.0")
SPEC_RELEASE_NOTES = {
    "1.0.0": "Initial release.",
    "1.1.0": "duration, start and end stored as float64 (were float32): exact IoU ties survive (docs/metrics.md).",
}


class AnnotationFormatError(errors.InputError):
    """A malformed annotation record. The message starts with where it is (file:line, or file and JSON entry)."""


def parse_number(text: str, where: str, field: str) -> float:
    """Parses a time or count written as text (`"12.3"`); raises naming `where` if it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise AnnotationFormatError(f"{where}: {field} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise AnnotationFormatError(f"{where}: {field} must be finite, got {text!r}")
    return value


def as_number(value: Any, where: str, field: str) -> float:
    """Checks a decoded value (JSON or pickle) is a finite int or float, not a bool or string; returns a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AnnotationFormatError(f"{where}: {field} must be a finite number, got {value!r}")
    return float(value)


def clean_query(text: Any, where: str) -> str:
    """Returns the query stripped of surrounding whitespace; an empty or non-string query is an error."""
    if not isinstance(text, str):
        raise AnnotationFormatError(f"{where}: query must be a string, got {text!r}")
    query = text.strip()
    if not query:
        raise AnnotationFormatError(f"{where}: empty query")
    return query


def read_text(path: epath.Path) -> str:
    """The text of a UTF-8 annotation file; bytes that are not UTF-8 are an error naming the file and line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise AnnotationFormatError(
            f"{path}:{line}: not UTF-8 text ({error.reason}: byte {data[error.start]:#04x})"
        ) from None


def text_lines(path: epath.Path) -> Iterator[tuple[str, str]]:
    """Yields (line, where) for each non-blank line of a text annotation file, stripped; where is `file:line`."""
    for line_number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            yield line.strip(), f"{path}:{line_number}"


def split_once(line: str, separator: str, where: str, between: str) -> tuple[str, str]:
    """Splits `line` at the first `separator` only; raises naming `where` if the separator is missing."""
    head, found, tail = line.partition(separator)
    if not found:
        raise AnnotationFormatError(f"{where}: missing {separator!r} between {between}: {line!r}")
    return head, tail


def read_json(path: epath.Path) -> Any:
    """Parses a JSON file; a syntax error names the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise AnnotationFormatError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from None


def json_videos(path: epath.Path) -> Iterator[tuple[str, Mapping[str, Any], str]]:
    """Yields (key, entry, where) for a `{video_key: {...}}` annotation file (ActivityNet, TACoS 2D-TAN)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationFormatError(f"{path}: expected a JSON object keyed by video id, got {type(data).__name__}")
    for key, entry in data.items():
        where = f"{path}: video {key!r}"
        if not isinstance(entry, dict):
            raise AnnotationFormatError(f"{where}: expected an object, got {type(entry).__name__}")
        yield key, entry, where


def json_field(entry: Mapping[str, Any], name: str, where: str) -> Any:
    """Returns `entry[name]`, or raises naming the entry and the missing field."""
    if name not in entry:
        raise AnnotationFormatError(f"{where}: missing field {name!r}")
    return entry[name]


def timestamped_sentences(entry: Mapping[str, Any], where: str) -> Iterator[tuple[float, float, Any, str]]:
    """Yields (start, end, sentence, where) from an entry's parallel `timestamps` and `sentences` lists.

    Unlike the reference's `zip`, lists of different lengths are an error instead of a silent truncation.
    Times are returned in the file's unit (seconds for ActivityNet, frames for TACoS).
    """
    timestamps = json_field(entry, "timestamps", where)
    sentences = json_field(entry, "sentences", where)
    if not isinstance(timestamps, list) or not isinstance(sentences, list):
        raise AnnotationFormatError(f"{where}: 'timestamps' and 'sentences' must be lists")
    if len(timestamps) != len(sentences):
        raise AnnotationFormatError(
            f"{where}: {len(timestamps)} timestamps but {len(sentences)} sentences (must be equal)"
        )
    for index, (pair, sentence) in enumerate(zip(timestamps, sentences)):
        item = f"{where} annotation {index}"
        if not isinstance(pair, list) or len(pair) != 2:
            raise AnnotationFormatError(f"{item}: timestamp must be [start, end], got {pair!r}")
        yield as_number(pair[0], item, "start"), as_number(pair[1], item, "end"), sentence, item


def clip_moment(start: float, end: float, duration: float) -> tuple[float, float, bool, bool]:
    """(start, end) clipped to [0, duration], and whether each was outside by more than `TIME_TOLERANCE_S` (a repair
    to count). Times stay float64, the values the file wrote (docs/metrics.md: float32 loses exact IoU ties)."""
    start_clipped = not -TIME_TOLERANCE_S <= start <= duration + TIME_TOLERANCE_S
    end_clipped = not -TIME_TOLERANCE_S <= end <= duration + TIME_TOLERANCE_S
    return min(max(start, 0.0), duration), min(max(end, 0.0), duration), start_clipped, end_clipped


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One query and its moment in seconds, clipped to [0, duration]; `moment_valid` is start < end."""

    query: str
    start: float
    end: float
    moment_valid: bool


@dataclasses.dataclass
class VideoAnnotations:
    video_id: str
    duration: float
    annotations: list[Annotation] = dataclasses.field(default_factory=list)


class SplitAnnotations:
    """One split's records grouped by video in file order, clipped to [0, duration], with repair counts.

    Every record is kept, so counts match the paper's: a time outside [0, duration] (beyond
    `TIME_TOLERANCE_S`) is clipped and counted, and a record whose start >= end after clipping is
    stored with `moment_valid = False` (counted as invalid) so training can skip it.
    """

    def __init__(self):
        self.videos: dict[str, VideoAnnotations] = {}
        self.num_start_clipped = 0
        self.num_end_clipped = 0
        self.num_invalid = 0

    @property
    def num_annotations(self) -> int:
        return sum(len(video.annotations) for video in self.videos.values())

    def add(self, video_id: str, duration: float, query: Any, start: float, end: float, where: str) -> Annotation:
        """Adds one record (times in seconds); `where` names the file and line for errors."""
        if not math.isfinite(duration) or duration <= 0:
            raise AnnotationFormatError(f"{where}: video {video_id!r} has duration {duration}, must be > 0")
        video = self.videos.setdefault(video_id, VideoAnnotations(video_id, duration))
        if video.duration != duration:
            raise AnnotationFormatError(
                f"{where}: video {video_id!r} has duration {duration}, earlier records said {video.duration}"
            )
        start, end, start_clipped, end_clipped = clip_moment(start, end, duration)
        self.num_start_clipped += start_clipped
        self.num_end_clipped += end_clipped
        annotation = Annotation(clean_query(query, where), start, end, start < end)
        self.num_invalid += not annotation.moment_valid
        video.annotations.append(annotation)
        return annotation


@dataclasses.dataclass(frozen=True)
class AnnotationSource:
    """An annotation file: looked up by `file_name` in the manual dir, else downloaded from `url`.

    `url` is None for files with no public direct-download copy (they must be in the manual dir).
    """

    file_name: str
    url: str | None = None


def resolve_annotation_files(
    dl_manager: tfds.download.DownloadManager, sources: Sequence[AnnotationSource]
) -> dict[str, epath.Path]:
    """Maps each source's file name to a local path: the manual dir's copy if present, else a verified download.

    Downloads are checked against the builder's `checksums.tsv` by TFDS.
    """
    manual_dir = dl_manager.manual_dir
    paths, urls = {}, {}
    for source in sources:
        local = manual_dir / source.file_name
        if local.exists():
            paths[source.file_name] = local
        elif source.url is None:
            raise errors.NotFoundError(
                f"{local} not found: {source.file_name} has no public download, put it in the manual dir"
            )
        else:
            urls[source.file_name] = source.url
    if paths:
        logging.info("Annotations from the manual dir: %s", sorted(paths))
    if urls:
        logging.info("Annotations downloaded: %s", sorted(urls))
        paths.update(dl_manager.download(urls))
    return paths


def seconds_feature(doc: str) -> tfds.features.Tensor:
    """A float64 time in seconds, stored as its 8 bytes: a tf.train.Example has float32 lists only, and TFDS writes a
    float64 `Scalar` into one, which turns 0.4 into 0.4000000059604645 (docs/metrics.md)."""
    return tfds.features.Tensor(shape=(), dtype=np.float64, encoding=tfds.features.Encoding.BYTES, doc=doc)


def video_features(
    feature_dim: int,
    video_extras: Mapping[str, tfds.features.FeatureConnector] | None = None,
    annotation_extras: Mapping[str, tfds.features.FeatureConnector] | None = None,
) -> tfds.features.FeaturesDict:
    """The feature spec of every NLVL builder: one example per video (tfds_builders/README.md, "Feature spec").

    A builder may add fields of its own to the example (`video_extras`) and to each annotation
    (`annotation_extras`, e.g. Ego4D's ids); the input pipeline carries extra annotation fields into its records.
    """
    return tfds.features.FeaturesDict(
        {
            **(video_extras or {}),
            "video_id": tfds.features.Text(),
            "duration": seconds_feature("seconds"),
            # Stored as raw bytes: serializing as a float list is ~90x slower (24 ms vs 0.3 ms for [130, 1024]).
            "features": tfds.features.Tensor(
                shape=(None, feature_dim), dtype=np.float32, encoding=tfds.features.Encoding.BYTES
            ),
            "annotations": tfds.features.Sequence(
                {
                    "query": tfds.features.Text(doc="raw text, stripped of surrounding whitespace"),
                    "start": seconds_feature("seconds, clipped to [0, duration]"),
                    "end": seconds_feature("seconds, clipped to [0, duration]"),
                    "moment_valid": tfds.features.Scalar(
                        np.bool_, doc="start < end; false records are kept for counts"
                    ),
                    **(annotation_extras or {}),
                }
            ),
        }
    )


def load_features(path: epath.Path, feature_dim: int) -> np.ndarray:
    """Loads a `[T, D]` .npy feature file as float32; raises naming the file if it is unreadable or not
    a non-empty, finite, floating-point array with D == `feature_dim`."""
    try:
        with path.open("rb") as f:
            array = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file
        raise errors.InputError(f"{path}: cannot read a .npy array: {error}") from None
    return checked_features(array, path, feature_dim)


def checked_features(array: np.ndarray, path: epath.Path, feature_dim: int) -> np.ndarray:
    """`array` as float32 if it is a non-empty, finite, floating-point [T, feature_dim] array; else an error naming
    `path`, the file it was read from."""
    if not np.issubdtype(array.dtype, np.floating):
        raise errors.InputError(f"{path}: features must be floating point, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != feature_dim:
        raise errors.InputError(f"{path}: features must have shape [T, {feature_dim}], got {list(array.shape)}")
    if array.shape[0] == 0:
        raise errors.InputError(f"{path}: features have zero rows")
    with np.errstate(over="ignore"):  # values beyond float32's range become Inf, refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise errors.InputError(f"{path}: features contain NaN or Inf (in float32)")
    return array


def split_report(split: SplitAnnotations, missing_ids: Sequence[str]) -> dict[str, Any]:
    """What a split's build kept, repaired and left out, for the log and the dataset's metadata.json."""
    missing = set(missing_ids)
    return {
        "videos": len(split.videos) - len(missing),
        "annotations": sum(len(v.annotations) for v in split.videos.values() if v.video_id not in missing),
        "annotations_in_files": split.num_annotations,
        "start_clipped": split.num_start_clipped,
        "end_clipped": split.num_end_clipped,
        "invalid_moments": split.num_invalid,
        "videos_without_features": len(missing_ids),
        "first_videos_without_features": list(missing_ids[:MAX_REPORTED_IDS]),
    }


@dataclasses.dataclass
class FeatureConfig(tfds.core.BuilderConfig):
    """A builder config naming the visual features: where they come from and their dimension D."""

    feature_dim: int = 1024


class LostExamplesError(RuntimeError):
    """A build wrote a different number of examples than its work items make: records were lost or duplicated."""


class ScalableBuilder(tfds.core.GeneratorBasedBuilder):
    """A builder that generates in process by default, and with Apache Beam when the build asks for it.

    `tfds build ... --beam_pipeline_options=runner=DirectRunner` (any runner: Dataflow, Spark, Flink), or a
    `tfds.download.DownloadConfig` with `beam_options` or `beam_runner`, turns every split into a Beam pipeline that
    applies the same function to the same work items, so it writes the same records as the in-process build.
    Subclasses return `self.examples(split, items, make_examples, num_examples)` from `_generate_examples`:
    `make_examples(item)` yields (key, example) pairs, and must pickle for Beam's workers (a module-level function, or
    `functools.partial` of one over plain values).

    After the build, every split's example count is checked against what its items make: Beam's DirectRunner in
    multi_processing mode was seen to drop records without a word (docs/benchmarks.md), so a count that differs is
    a `LostExamplesError` and the build is not published.
    """

    def _download_and_prepare(self, dl_manager, download_config):
        self._use_beam = download_config.beam_runner is not None or download_config.beam_options is not None
        self._expected_examples = {}
        super()._download_and_prepare(dl_manager, download_config)
        if download_config.max_examples_per_split is not None:
            return  # a capped build writes fewer on purpose
        written = {name: split.num_examples for name, split in self.info.splits.items()}
        wrong = {name: count for name, count in self._expected_examples.items() if written.get(name, 0) != count}
        if wrong:
            raise LostExamplesError(
                f"{self.name}: the build wrote "
                + ", ".join(f"{written.get(name, 0)} of {count} {name} examples" for name, count in wrong.items())
                + " (records lost or duplicated by the runner); nothing was published"
            )

    def examples(
        self,
        split: str,
        items: Iterable[Any],
        make_examples: Callable[[Any], Iterable[tuple[str, Any]]],
        num_examples: int | None = None,
    ):
        """A generator of the (key, example) pairs of every item in process; a Beam PTransform with Beam.

        num_examples: how many examples the items make (checked after the build); None: one per item.
        """
        items = list(items)
        self._expected_examples[split] = len(items) if num_examples is None else num_examples
        if self._use_beam:
            beam = tfds.core.lazy_imports.apache_beam
            return beam.Create(items) | beam.FlatMap(make_examples)
        return itertools.chain.from_iterable(map(make_examples, items))


def warn_missing_features(builder_name: str, split_name: str, missing: Sequence[str], total: int, left_out: int, where):
    """Logs the videos of a split left out for want of a feature file: their count, annotations and first ids."""
    if missing:
        logging.warning(
            "%s %s: %d of %d videos have no feature file and are left out (%d annotations); first: %s (in %s)",
            builder_name,
            split_name,
            len(missing),
            total,
            left_out,
            ", ".join(missing[:MAX_REPORTED_IDS]),
            where,
        )


class AnnotatedVideoBuilder(ScalableBuilder):
    """Base of the builders whose annotations come from files: subclasses only parse those files.

    Subclasses set `HOMEPAGE`, `BUILDER_CONFIGS` (of `FeatureConfig`), `MANUAL_DOWNLOAD_INSTRUCTIONS`
    and implement `annotation_sources` and `read_annotation_files` (public so that scripts can parse
    local copies the same way). Features are read from `<manual_dir>/features/<video_id>.npy`.
    """

    HOMEPAGE = ""

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=video_features(self.builder_config.feature_dim),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(),
        )

    @abc.abstractmethod
    def annotation_sources(self) -> Sequence[AnnotationSource]:
        """The annotation files this builder config reads."""

    @abc.abstractmethod
    def read_annotation_files(self, files: Mapping[str, epath.Path]) -> dict[str, SplitAnnotations]:
        """Parses the files ({file name: local path}) into every split's annotations, keyed by TFDS split name."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = self.read_annotation_files(resolve_annotation_files(dl_manager, self.annotation_sources()))
        feature_dir = dl_manager.manual_dir / FEATURES_DIR
        if not feature_dir.is_dir():
            raise errors.NotFoundError(
                f"{feature_dir} not found: put one <video_id>.npy of shape [T, D] per video there"
            )
        reports = {}
        for name, split in splits.items():
            missing = [vid for vid in split.videos if not (feature_dir / f"{vid}.npy").exists()]
            reports[name] = split_report(split, missing)
            logging.info("%s %s: %s", self.name, name, reports[name])
            left_out = split.num_annotations - reports[name]["annotations"]
            warn_missing_features(self.name, name, missing, len(split.videos), left_out, feature_dir)
        self.info.metadata[METADATA_REPORT_KEY] = reports
        return {name: self._generate_examples(name, split, feature_dir) for name, split in splits.items()}

    def _generate_examples(self, name: str, split: SplitAnnotations, feature_dir: epath.Path):
        # Videos without features are left out here; _split_generators counted and reported them.
        videos = [video for video in split.videos.values() if (feature_dir / f"{video.video_id}.npy").exists()]
        make = functools.partial(
            video_example, feature_dir=str(feature_dir), feature_dim=self.builder_config.feature_dim
        )
        return self.examples(name, videos, make)


def video_example(video: VideoAnnotations, feature_dir: str, feature_dim: int) -> Iterator[tuple[str, dict]]:
    """The one (key, example) pair of a video: its annotations and `<feature_dir>/<video_id>.npy`."""
    yield (
        video.video_id,
        {
            "video_id": video.video_id,
            "duration": video.duration,
            "features": load_features(epath.Path(feature_dir) / f"{video.video_id}.npy", feature_dim),
            "annotations": [dataclasses.asdict(a) for a in video.annotations],
        },
    )
