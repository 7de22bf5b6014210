"""extract_features.py as an Apache Beam pipeline: the same files, on the DirectRunner or any other runner.

    python experiments/extract_features_beam.py --videos=DIR_OR_LIST_FILE --output_dir=DIR --weights=FILE \
        --preset=vslnet_charades [--batch=8] [--runner=DirectRunner] \
        [--beam_pipeline_options="project=P,region=R,temp_location=gs://B/tmp"]

Videos and weights must be readable where the workers run; --output_dir may be any path tf.io.gfile writes (gs://).
"""

from absl import flags

from nlvl_tf import cli
from nlvl_tf.video import beam_pipeline, extraction, presets

_VIDEOS = flags.DEFINE_string("videos", None, "A folder of videos, or a text file listing one video path per line.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where features/<video_id>.npy and manifest.jsonl go.")
_WEIGHTS = flags.DEFINE_string("weights", None, "I3D weights: .pt, a TF checkpoint prefix, or .weights.h5.")
_PRESET = flags.DEFINE_enum("preset", "vslnet_charades", list(presets.PRESETS), "Preprocessing preset.")
_BATCH = flags.DEFINE_integer("batch", 8, "Windows per I3D forward pass.", lower_bound=1)
_RUNNER = flags.DEFINE_string("runner", "DirectRunner", "Beam runner (DirectRunner, DataflowRunner, FlinkRunner...).")
_OPTIONS = flags.DEFINE_list(
    "beam_pipeline_options", [], "More Beam pipeline options, comma-separated key=value (as `tfds build` takes them)."
)


def main(argv):
    cli.reject_extra_arguments(argv)
    options = [f"--{option}" for option in _OPTIONS.value]
    summary = beam_pipeline.run(
        _VIDEOS.value, _OUTPUT_DIR.value, _WEIGHTS.value, _PRESET.value, _BATCH.value, _RUNNER.value, options
    )
    extraction.report(summary)


if __name__ == "__main__":
    flags.mark_flags_as_required(["videos", "output_dir", "weights"])
    cli.run(main)
