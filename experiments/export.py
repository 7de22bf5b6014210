"""Exports a trained workdir's best checkpoint as a SavedModel that serves raw text queries.

python experiments/export.py --workdir=/tmp/run --export_dir=/tmp/export [--top_k=5] [--selection=pm|u] [--xla_loop]
"""

import json

from absl import flags

from nlvl_tf import cli
from nlvl_tf.serve import export

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Where the SavedModel is written.")
_TOP_K = flags.DEFINE_integer("top_k", None, "Moments returned per query (K); default: the run's config.export.top_k.")
_SELECTION = flags.DEFINE_enum(
    "selection", None, ["pm", "u"], "VSLNet-L candidate selection strategy; default: the run's config.export.selection."
)
_XLA_LOOP = flags.DEFINE_bool(
    "xla_loop",
    None,
    "XLA-compile the LSTM loops (faster; only for servers that run XLA: tensorflow_model_server on CPU needs "
    "--xla_cpu_compilation_enabled). Default: the run's config.export.xla_loop (false).",
)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint to export.")


def main(argv):
    cli.reject_extra_arguments(argv)
    metadata = export.export(
        _WORKDIR.value, _EXPORT_DIR.value, _TOP_K.value, _SELECTION.value, _CHECKPOINT.value, _XLA_LOOP.value
    )
    print(json.dumps({key: value for key, value in metadata.items() if key != "config"}))


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir", "export_dir"])
    cli.run(main)
