"""Answers one query about one video with an exported model and prints the ranked moments as JSON.

    python experiments/predict.py --saved_model=/tmp/export --features=video.npy --duration=31.5 \\
        --query="a person opens the door." [--top_k=5] [--length=T]
    python experiments/predict.py --saved_model=/tmp/export --video=clip.mp4 --extractor=/tmp/extractor \\
        --query="a person opens the door." [--top_k=5] [--cache_dir=DIR]

With --video, the video is decoded and its features extracted the first time; they are cached by the file's content
and the extractor (in --cache_dir), so asking again about the same video runs only the localizer. The JSON then
also holds "timing": seconds spent on the features (and whether they came from the cache) and on localizing.
"""

import json
import time

import numpy as np
from absl import flags

from nlvl_tf import cli, errors
from nlvl_tf.serve import localizer as localizer_lib
from nlvl_tf.serve import video_features

FLAGS = flags.FLAGS
_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An export written by export.py.")
_FEATURES = flags.DEFINE_string("features", None, "A .npy file of the video's features [T, D].")
_DURATION = flags.DEFINE_float("duration", None, "With --features: the video's duration in seconds.")
_VIDEO = flags.DEFINE_string("video", None, "A video file (instead of --features); needs --extractor.")
_EXTRACTOR = flags.DEFINE_string("extractor", None, "With --video: an extractor export (export_extractor.py).")
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", video_features.DEFAULT_CACHE_DIR, "With --video: where features are cached (empty: not on disk)."
)
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


def check_flags(given):
    """Refuses flags that do not go together; `given`: the names of the flags on the command line."""
    if ("features" in given) == ("video" in given):
        raise errors.InputError("give either --features (with --duration) or --video (with --extractor)")
    if "features" in given:
        if "duration" not in given:
            raise errors.InputError("--features needs --duration (the video's length in seconds)")
        if "extractor" in given or "cache_dir" in given:
            raise errors.InputError("--extractor and --cache_dir go with --video; --features are extracted already")
    else:
        if "extractor" not in given:
            raise errors.InputError("--video needs --extractor (an export of experiments/export_extractor.py)")
        if "duration" in given or "length" in given:
            raise errors.InputError("--duration and --length go with --features; a --video's come from the file")


def main(argv):
    cli.reject_extra_arguments(argv)
    check_flags(
        {name for name in ("features", "duration", "video", "extractor", "cache_dir", "length") if FLAGS[name].present}
    )
    if _FEATURES.value is not None:
        localizer = localizer_lib.Localizer.load(_SAVED_MODEL.value)
        features = load_features(_FEATURES.value, _LENGTH.value)
        moments = localizer.predict(features, _DURATION.value, _QUERY.value, _TOP_K.value)
        print(json.dumps({"query": _QUERY.value, "duration": _DURATION.value, "moments": moments}))
        return
    localizer = localizer_lib.Localizer.load(
        _SAVED_MODEL.value, extractor=_EXTRACTOR.value, cache_dir=_CACHE_DIR.value or None
    )
    features, duration = localizer.video_features(_VIDEO.value)
    timing = {
        "features_s": localizer.featurizer.last["seconds"],
        "features_cached": localizer.featurizer.last["cached"],
    }
    started = time.perf_counter()
    moments = localizer.predict(features, duration, _QUERY.value, _TOP_K.value)
    timing["localize_s"] = time.perf_counter() - started
    print(
        json.dumps(
            {"query": _QUERY.value, "video": _VIDEO.value, "duration": duration, "moments": moments, "timing": timing}
        )
    )


if __name__ == "__main__":
    flags.mark_flags_as_required(["saved_model", "query"])
    cli.run(main)
