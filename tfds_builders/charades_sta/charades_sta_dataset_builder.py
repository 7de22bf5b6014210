"""Charades-STA (Gao et al., TALL, ICCV 2017): indoor videos, `vid start end##sentence` lines, seconds.

Durations are not in the STA files; they come from the Charades metadata `charades.json`
(`{vid: {"duration": seconds, ...}}`, equal to the `length` column of the official Charades CSVs).
Splits: train and test; there is no validation split (the paper and the authors' code pick
checkpoints on test).
"""

from etils import epath

from nlvl_tf.data import builder_common as common

_SUPER_EVENTS = (
    "https://raw.githubusercontent.com/piergiaj/super-events-cvpr18/d4f940565d878ddf573a4a888c61d167683fae42"
)
DURATIONS_FILE = "charades.json"
SPLIT_FILES = {"train": "charades_sta_train.txt", "test": "charades_sta_test.txt"}
ANNOTATION_SOURCES = (
    common.AnnotationSource(SPLIT_FILES["train"], f"{common.VIDEOX_2D_TAN_DATA}/Charades-STA/charades_sta_train.txt"),
    common.AnnotationSource(SPLIT_FILES["test"], f"{common.VIDEOX_2D_TAN_DATA}/Charades-STA/charades_sta_test.txt"),
    common.AnnotationSource(DURATIONS_FILE, f"{_SUPER_EVENTS}/data/charades.json"),
)


def read_durations(path: epath.Path) -> dict[str, float]:
    """Reads `charades.json` into {video_id: duration in seconds}."""
    return {
        vid: common.as_number(common.json_field(entry, "duration", where), where, "duration")
        for vid, entry, where in common.json_videos(path)
    }


def read_sta_file(path: epath.Path, durations: dict[str, float]) -> common.SplitAnnotations:
    """Parses `<vid> <start_s> <end_s>##<sentence>` lines; `##` is split once, so a `#` in a sentence stays."""
    split = common.SplitAnnotations()
    for line, where in common.text_lines(path):
        head, sentence = common.split_once(line, "##", where, "times and sentence")
        fields = head.split()
        if len(fields) != 3:
            raise common.AnnotationFormatError(
                f"{where}: expected '<video_id> <start> <end>' before '##', got {head!r}"
            )
        video_id, start, end = fields
        if video_id not in durations:
            raise common.AnnotationFormatError(f"{where}: video {video_id!r} has no duration in {DURATIONS_FILE}")
        split.add(
            video_id,
            durations[video_id],
            sentence,
            common.parse_number(start, where, "start"),
            common.parse_number(end, where, "end"),
            where,
        )
    return split


def read_splits(files: dict[str, epath.Path]) -> dict[str, common.SplitAnnotations]:
    """Reads every split from the annotation files, keyed by file name as in `ANNOTATION_SOURCES`."""
    durations = read_durations(files[DURATIONS_FILE])
    return {split: read_sta_file(files[name], durations) for split, name in SPLIT_FILES.items()}


class Builder(common.AnnotatedVideoBuilder):
    """Charades-STA: one example per video with its queries and pre-extracted features."""

    VERSION = common.SPEC_VERSION
    RELEASE_NOTES = common.SPEC_RELEASE_NOTES
    HOMEPAGE = "https://github.com/jiyanggao/TALL"
    BUILDER_CONFIGS = [
        common.FeatureConfig(
            name="i3d",
            feature_dim=1024,
            description="I3D Mixed_5c features (D=1024, about 2 per second), as used by VSLNet.",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put one `<video_id>.npy` float array of shape [T, 1024] per video in `<manual_dir>/features/`
    (I3D features, e.g. the VSLNet authors' Charades-STA features). The annotation files
    `charades_sta_train.txt`, `charades_sta_test.txt` and `charades.json` are read from
    `<manual_dir>/` when present, otherwise downloaded.
    """

    def annotation_sources(self):
        return ANNOTATION_SOURCES

    def read_annotation_files(self, files):
        return read_splits(files)
