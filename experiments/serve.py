"""Serves an export over TensorFlow Serving's REST API, with a page to try it on dataset videos or uploaded files.

    python experiments/serve.py --saved_model=E [--extractor=X] [--dataset=charades_sta/i3d --split=test
        --data_dir=D [--videos=DIR]] [--host=127.0.0.1 --port=8080 --model_name=nlvl] [--max_upload_mb=100]
        [--api_url=URL] [--cors] [--cache_dir=DIR]

Then open http://127.0.0.1:8080/ (the page), or send TF Serving requests to
http://127.0.0.1:8080/v1/models/nlvl:predict. docs/serving.md describes the API, the page and the limits.
"""

import os

# A quiet console: one line per request (TensorFlow still prints a few lines when it starts).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags, logging  # noqa: E402

from nlvl_tf import cli, errors  # noqa: E402
from nlvl_tf.serve import server, video_features  # noqa: E402

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "An export written by export.py.")
_EXTRACTOR = flags.DEFINE_string("extractor", None, "An extractor export (export_extractor.py): enables uploads.")
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", video_features.DEFAULT_CACHE_DIR, "Where uploads' features are cached (empty: memory only)."
)
_DATASET = flags.DEFINE_string("dataset", None, "A built TFDS dataset whose videos the page lists: NAME[/CONFIG].")
_SPLIT = flags.DEFINE_string("split", "test", "The dataset split listed.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The TFDS data dir of --dataset (default: TFDS's).")
_VIDEOS = flags.DEFINE_string("videos", None, "A folder of the dataset's video files, <video_id>.<ext>, for playback.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the server to the network.")
_PORT = flags.DEFINE_integer("port", 8080, "Port (0: any free port; the chosen one is printed).")
_MODEL_NAME = flags.DEFINE_string("model_name", "nlvl", "The model's name in the API's URLs (/v1/models/<name>).")
_MAX_UPLOAD_MB = flags.DEFINE_float("max_upload_mb", 100.0, "Largest video upload accepted, in MiB.")
_INTRA_OP_THREADS = flags.DEFINE_integer(
    "intra_op_threads",
    0,
    "TensorFlow's threads per op (0: one per core). 1 answers single queries fastest (docs/benchmarks.md); like "
    "tensorflow_model_server's --tensorflow_intra_op_parallelism.",
    lower_bound=0,
)
_API_URL = flags.DEFINE_string(
    "api_url",
    "",
    "Where the page sends predictions: empty for this server, or a tensorflow_model_server's REST address "
    "(e.g. http://127.0.0.1:8501, started with --enable_cors_support) serving the same SavedModel.",
)
_CORS = flags.DEFINE_bool(
    "cors", False, "Answer the API with CORS headers (tensorflow_model_server's --enable_cors_support)."
)


def main(argv):
    cli.reject_extra_arguments(argv)
    logging.set_verbosity(logging.ERROR)  # TFDS and TensorFlow log every dataset read at INFO
    if _INTRA_OP_THREADS.value:
        import tensorflow as tf  # noqa: PLC0415

        tf.config.threading.set_intra_op_parallelism_threads(_INTRA_OP_THREADS.value)
    featurizer = None
    if _EXTRACTOR.value:
        featurizer = video_features.VideoFeaturizer(_EXTRACTOR.value, _CACHE_DIR.value or None)
    application = server.make_application(
        _SAVED_MODEL.value,
        _MODEL_NAME.value,
        _DATASET.value,
        _SPLIT.value,
        _DATA_DIR.value,
        _VIDEOS.value,
        featurizer,
        _MAX_UPLOAD_MB.value,
        _API_URL.value,
        _CORS.value,
    )
    try:
        httpd = server.Server((_HOST.value, _PORT.value), application)
    except errors.InputError:
        application.close()  # its uploads folder
        raise
    print(f"serving {_SAVED_MODEL.value} at {httpd.url}/ (API: {httpd.url}/v1/models/{_MODEL_NAME.value})", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        application.close()


if __name__ == "__main__":
    flags.mark_flags_as_required(["saved_model"])
    cli.run(main)
