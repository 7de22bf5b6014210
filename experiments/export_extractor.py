"""Exports I3D with a preset's preprocessing as a SavedModel: uint8 frames in, features out (TensorFlow only to serve).

    python experiments/export_extractor.py --weights=FILE --preset=vslnet_charades --export_dir=X

Signatures: serving_default (frames [T, H, W, 3] of one video -> features [rows, 1024]), window_features,
preprocess, crop_features, metadata (nlvl_tf/video/export.py). From Python,
`nlvl_tf.video.extraction.features_from_video(path, tf.saved_model.load(X))` decodes a file and runs it.
"""

import json

from absl import flags

from nlvl_tf import cli
from nlvl_tf.video import export, presets

_WEIGHTS = flags.DEFINE_string("weights", None, "I3D weights: .pt, a TF checkpoint prefix, or .weights.h5.")
_PRESET = flags.DEFINE_enum("preset", "vslnet_charades", list(presets.PRESETS), "Preprocessing preset.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Where the SavedModel is written.")


def main(argv):
    cli.reject_extra_arguments(argv)
    print(json.dumps(export.export(_WEIGHTS.value, _PRESET.value, _EXPORT_DIR.value)))


if __name__ == "__main__":
    flags.mark_flags_as_required(["weights", "export_dir"])
    cli.run(main)
