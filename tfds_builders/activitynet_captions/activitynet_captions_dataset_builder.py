"""ActivityNet Captions (Krishna et al., ICCV 2017): YouTube videos, `{vid: {duration, timestamps, sentences}}`.

Splits as in the VSLNet code ("following Yuan et al."): train = `train.json`, validation =
`val_2.json`, test = `val_1.json`. The paper reports train and test only. Every val_2 video is also a
val_1 video, so the validation split is not independent of test: use it for smoke checks, not for
model selection claims.
"""

from etils import epath

from nlvl_tf.data import builder_common as common

SPLIT_FILES = {"train": "train.json", "validation": "val_2.json", "test": "val_1.json"}
# 2D-TAN renamed the Stanford files: val_1 -> val.json, val_2 -> test.json (same bytes).
ANNOTATION_SOURCES = (
    common.AnnotationSource("train.json", f"{common.VIDEOX_2D_TAN_DATA}/ActivityNet/train.json"),
    common.AnnotationSource("val_1.json", f"{common.VIDEOX_2D_TAN_DATA}/ActivityNet/val.json"),
    common.AnnotationSource("val_2.json", f"{common.VIDEOX_2D_TAN_DATA}/ActivityNet/test.json"),
)


def read_captions_file(path: epath.Path) -> common.SplitAnnotations:
    """Parses one captions JSON file; times and durations are seconds (ints and floats mixed)."""
    split = common.SplitAnnotations()
    for video_id, entry, where in common.json_videos(path):
        duration = common.as_number(common.json_field(entry, "duration", where), where, "duration")
        for start, end, sentence, item in common.timestamped_sentences(entry, where):
            split.add(video_id, duration, sentence, start, end, item)
    return split


class Builder(common.AnnotatedVideoBuilder):
    """ActivityNet Captions: one example per video with its captions as queries and pre-extracted features."""

    VERSION = common.SPEC_VERSION
    RELEASE_NOTES = common.SPEC_RELEASE_NOTES
    HOMEPAGE = "https://cs.stanford.edu/people/ranjaykrishna/densevid/"
    BUILDER_CONFIGS = [
        common.FeatureConfig(
            name="i3d",
            feature_dim=1024,
            description="I3D Mixed_5c features (D=1024, one per 16 frames), as used by VSLNet.",
        ),
        common.FeatureConfig(
            name="c3d",
            feature_dim=500,
            description="Official ActivityNet challenge C3D features, PCA-reduced to D=500 (VSLNet's 'org').",
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put one `<video_id>.npy` float array of shape [T, D] per video in `<manual_dir>/features/`, with
    ids as in the annotations (`v_` + YouTube id) and D = 1024 for config `i3d`, 500 for `c3d`.
    The annotation files `train.json`, `val_1.json` and `val_2.json` (Stanford's names) are read
    from `<manual_dir>/` when present, otherwise downloaded.
    """

    def annotation_sources(self):
        return ANNOTATION_SOURCES

    def read_annotation_files(self, files):
        return {split: read_captions_file(files[name]) for split, name in SPLIT_FILES.items()}
