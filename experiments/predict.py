"""Answers one query about one video with an exported model and prints the ranked moments as JSON.

    python experiments/predict.py --saved_model=/tmp/export --features=video.npy --duration=31.5 \
        --query="a person opens the door." [--top_k=5] [--length=T]
"""

import json

import numpy as np
from absl import flags

from nlvl_tf import cli, errors
from nlvl_tf.serve import localizer as localizer_lib

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An export written by export.py.")
_FEATURES = flags.DEFINE_string("features", None, "A .npy file of the video's features [T, D].")
_DURATION = flags.DEFINE_float("duration", None, "The video's duration in seconds.")
_QUERY = flags.DEFINE_string("query", None, "The sentence to localize.")
_TOP_K = flags.DEFINE_integer("top_k", None, "Moments to return (default: the export's K).")
_LENGTH = flags.DEFINE_integer("length", None, "Use only the first LENGTH feature rows (default: all).")


def load_features(path, length):
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file
        raise errors.InputError(f"--features={path}: cannot read a .npy array ({error})") from error
    if features.ndim != 2:
        raise errors.InputError(f"--features={path}: expected a [T, D] array, got shape {list(features.shape)}")
    if length is not None:
        if not 1 <= length <= len(features):
            raise errors.InputError(f"--length={length} must be in [1, {len(features)}] (the rows in {path})")
        features = features[:length]
    return features


def main(argv):
    cli.reject_extra_arguments(argv)
    localizer = localizer_lib.Localizer.load(_SAVED_MODEL.value)
    features = load_features(_FEATURES.value, _LENGTH.value)
    moments = localizer.predict(features, _DURATION.value, _QUERY.value, _TOP_K.value)
    print(json.dumps({"query": _QUERY.value, "duration": _DURATION.value, "moments": moments}))


if __name__ == "__main__":
    flags.mark_flags_as_required(["saved_model", "features", "duration", "query"])
    cli.run(main)
