"""Evaluates a trained workdir's best checkpoint (or its latest, with --checkpoint=latest) on a split and writes
W/eval/<split>/metrics.json, length_buckets.json and predictions.jsonl.

    python experiments/evaluate.py --workdir=/tmp/run [--split=test]
"""

from absl import flags

from nlvl_tf import cli
from nlvl_tf import evaluation

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and checkpoints).")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate; default: the config's eval_split.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint to evaluate.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the TFDS data dir recorded in the workdir's config.")


def main(argv):
    cli.reject_extra_arguments(argv)
    results = evaluation.evaluate_workdir(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value)
    for selection, values in results.items():
        print((f"[{selection}] " if selection else "") + " ".join(f"{k} {v:.2f}" for k, v in values.items()))


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
