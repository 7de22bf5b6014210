"""TACoS (Regneri et al., TACL 2013): long cooking videos, times in frames at 29.4 fps, two public splits.

Configs:
- `tan`: the 2D-TAN split (train/val/test 75/27/25 videos, 9,790/4,436/4,001 annotations), JSON
  `{"sXX-dYY.avi": {timestamps: [[f0, f1]], sentences, fps, num_frames}}`; duration = num_frames / fps
  (2D-TAN's num_frames is the true count minus 16). I3D features, D = 1024.
- `org`: the TALL split (10,146/4,589/4,083 annotations in the paper), lines
  `sXX-dYY.avi_<f0>_<f1>:<sentence>#<sentence>#...#` in `TACoS_{train,val,test}_samples.txt` (only in
  TALL's `TACoS.tar`, so manual dir only); duration = TALL's frame count (`video_allframes_info.pkl`)
  / 29.4. TALL's C3D fc6 features, D = 4096.
"""

import dataclasses
import io
import pickle

from etils import epath

from nlvl_tf.data import builder_common as common

FPS = 29.4  # MPII-Cooking frame rate; TALL's frame numbers are at this rate.
TAN_SPLIT_FILES = {"train": "train.json", "validation": "val.json", "test": "test.json"}
ORG_SPLIT_FILES = {
    "train": "TACoS_train_samples.txt",
    "validation": "TACoS_val_samples.txt",
    "test": "TACoS_test_samples.txt",
}
FRAME_COUNTS_FILE = "video_allframes_info.pkl"
_TALL = "https://raw.githubusercontent.com/jiyanggao/TALL/7e600f5965a9746c3b3ec7e919944d9be9ee903f"
TAN_SOURCES = tuple(
    common.AnnotationSource(name, f"{common.VIDEOX_2D_TAN_DATA}/TACoS/{name}") for name in TAN_SPLIT_FILES.values()
)
ORG_SOURCES = (
    *(common.AnnotationSource(name) for name in ORG_SPLIT_FILES.values()),
    common.AnnotationSource(FRAME_COUNTS_FILE, f"{_TALL}/{FRAME_COUNTS_FILE}"),
)


def video_id_from_file_name(name: str) -> str:
    """TACoS ids are file names: `s13-d21.avi` -> `s13-d21` (an id without `.avi` is kept as is)."""
    return name.removesuffix(".avi")


def read_tan_file(path: epath.Path) -> common.SplitAnnotations:
    """Parses a 2D-TAN TACoS JSON file; frames are divided by the entry's fps. Duplicate records are kept."""
    split = common.SplitAnnotations()
    for key, entry, where in common.json_videos(path):
        fps = common.as_number(common.json_field(entry, "fps", where), where, "fps")
        if fps <= 0:
            raise common.AnnotationFormatError(f"{where}: fps must be > 0, got {fps}")
        num_frames = common.as_number(common.json_field(entry, "num_frames", where), where, "num_frames")
        for start, end, sentence, item in common.timestamped_sentences(entry, where):
            split.add(video_id_from_file_name(key), num_frames / fps, sentence, start / fps, end / fps, item)
    return split


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only (dicts, strings, numbers): a pickle that names any class or function is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is expected")


def read_frame_counts(path: epath.Path) -> dict[str, int]:
    """Reads TALL's `video_allframes_info.pkl` ({video id: frame count}, a Python 2 pickle)."""
    try:
        counts = _PlainDataUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise common.AnnotationFormatError(f"{path}: not a pickled {{video id: frame count}} dict: {error}") from None
    if not isinstance(counts, dict):
        raise common.AnnotationFormatError(f"{path}: expected a dict of frame counts, got {type(counts).__name__}")
    return {
        video_id_from_file_name(vid): common.as_number(n, f"{path}: video {vid!r}", "frame count")
        for vid, n in counts.items()
    }


def read_tall_samples(path: epath.Path, frame_counts: dict[str, int]) -> common.SplitAnnotations:
    """Parses TALL sample lines: one clip per line, its sentences separated by `#` (one trailing `#` dropped).

    The clip is split from the text at the first `:` only, so a `:` inside a sentence survives.
    Each sentence becomes one annotation with the clip's times, as the paper counts them.
    """
    split = common.SplitAnnotations()
    for line, where in common.text_lines(path):
        clip, text = common.split_once(line, ":", where, "clip and sentences")
        parts = clip.rsplit("_", 2)
        if len(parts) != 3:
            raise common.AnnotationFormatError(
                f"{where}: expected '<video>.avi_<start_frame>_<end_frame>', got {clip!r}"
            )
        video_id = video_id_from_file_name(parts[0])
        if video_id not in frame_counts:
            raise common.AnnotationFormatError(f"{where}: video {video_id!r} has no frame count in {FRAME_COUNTS_FILE}")
        start = common.parse_number(parts[1], where, "start frame") / FPS
        end = common.parse_number(parts[2], where, "end frame") / FPS
        for sentence in text.removesuffix("#").split("#"):
            split.add(video_id, frame_counts[video_id] / FPS, sentence, start, end, where)
    return split


@dataclasses.dataclass
class TacosConfig(common.FeatureConfig):
    """A TACoS config: which split's annotation format it reads, and its features."""

    annotation_format: str = "2d-tan-json"  # or "tall-samples"


class Builder(common.AnnotatedVideoBuilder):
    """TACoS: one example per video (about 130 queries each) with pre-extracted features."""

    VERSION = common.SPEC_VERSION
    RELEASE_NOTES = common.SPEC_RELEASE_NOTES
    HOMEPAGE = "https://www.coli.uni-saarland.de/projects/smile/page.php?id=tacos"
    BUILDER_CONFIGS = [
        TacosConfig(
            name="tan",
            feature_dim=1024,
            annotation_format="2d-tan-json",
            description="2D-TAN split (TACoS_tan) with I3D features (D=1024, one per 16 frames).",
        ),
        TacosConfig(
            name="org",
            feature_dim=4096,
            annotation_format="tall-samples",
            description="TALL split (TACoS_org) with TALL's C3D fc6 features (D=4096).",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put one `<video_id>.npy` float array of shape [T, D] per video in `<manual_dir>/features/`, with
    ids without `.avi` (`s13-d21`), D = 1024 for config `tan` (I3D), 4096 for `org` (C3D fc6).
    `tan` reads `train.json`, `val.json`, `test.json` from `<manual_dir>/` when present, otherwise
    downloads 2D-TAN's copies. `org` needs `TACoS_train_samples.txt`, `TACoS_val_samples.txt` and
    `TACoS_test_samples.txt` from TALL's `TACoS.tar` (exp_data/TACoS/) in `<manual_dir>/`;
    `video_allframes_info.pkl` is read from there when present, otherwise downloaded from TALL.
    """

    def annotation_sources(self):
        return TAN_SOURCES if self.builder_config.annotation_format == "2d-tan-json" else ORG_SOURCES

    def read_annotation_files(self, files):
        if self.builder_config.annotation_format == "2d-tan-json":
            return {split: read_tan_file(files[name]) for split, name in TAN_SPLIT_FILES.items()}
        frame_counts = read_frame_counts(files[FRAME_COUNTS_FILE])
        return {split: read_tall_samples(files[name], frame_counts) for split, name in ORG_SPLIT_FILES.items()}
