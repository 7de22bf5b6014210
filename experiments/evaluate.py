"""Evaluates a trained workdir's best checkpoint (or its latest, with --checkpoint=latest) on a split and writes
W/eval/<split>/metrics.json, length_buckets.json and predictions.jsonl; with --plots, also the figures of
nlvl_tf.figures in W/eval/<split>/plots/.

On a sweep directory (sweep.py's W), re-evaluates every seed's checkpoint (writing each W/seed_<seed>/eval/<split>/
as above), prints the table over seeds and writes it to W/eval/<split>/summary.json and summary.txt.

    python experiments/evaluate.py --workdir=/tmp/run [--split=test]
    python experiments/evaluate.py --workdir=/tmp/sweep [--split=test]
    python experiments/evaluate.py --workdir=/tmp/run_l --plots [--plot_queries=3 | --plot_indices=4,17]
        [--compare_workdir=/tmp/run_vslnet]
"""

from absl import app, flags

from nlvl_tf import cli
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.eval import evaluation, figures, summary

_WORKDIR = flags.DEFINE_string(
    "workdir", None, "A training workdir (holds config.json and checkpoints), or a sweep directory (sweep.py's)."
)
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate; default: the config's eval_split.")
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint to evaluate.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the TFDS data dir recorded in the workdir's config.")
_PLOTS = flags.DEFINE_bool("plots", False, "Also draw the figures (PNG) into W/eval/<split>/plots/.")
_PLOT_QUERIES = flags.DEFINE_integer(
    "plot_queries",
    3,
    "With --plots: per-query figures of the split's first N records (predictions.jsonl order).",
    lower_bound=0,
)
_PLOT_INDICES = flags.DEFINE_list(
    "plot_indices",
    None,
    "With --plots: per-query figures of these record indices "
    "(predictions.jsonl order) instead of the first --plot_queries.",
)
_COMPARE_WORKDIR = flags.DEFINE_string(
    "compare_workdir",
    None,
    "With --plots: a workdir evaluated on the same split "
    "(e.g. VSLNet for a VSLNet-L run) to compare with, per video length.",
)


def _query_indices():
    if _PLOT_INDICES.value is None:
        return tuple(range(_PLOT_QUERIES.value))
    try:
        return tuple(int(index) for index in _PLOT_INDICES.value)
    except ValueError:
        raise app.UsageError(f"--plot_indices must be integers, got {','.join(_PLOT_INDICES.value)}") from None


def main(argv):
    cli.reject_extra_arguments(argv)
    plot_flags = [flag for flag in ("plot_queries", "plot_indices", "compare_workdir") if flags.FLAGS[flag].present]
    if plot_flags and not _PLOTS.value:
        raise app.UsageError(f"--{', --'.join(plot_flags)} need --plots")
    if workdir_lib.is_sweep(_WORKDIR.value):
        if _PLOTS.value:
            raise app.UsageError("--plots draws one run: give one seed's workdir, W/seed_<seed>, not the sweep")
        print(
            summary.format_table(
                summary.evaluate_sweep(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value)
            )
        )
        return
    results = evaluation.evaluate_workdir(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value)
    for selection, values in results.items():
        print((f"[{selection}] " if len(results) > 1 else "") + " ".join(f"{k} {v:.2f}" for k, v in values.items()))
    if _PLOTS.value:
        directory, written = figures.write_figures(
            _WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value, _query_indices(), _COMPARE_WORKDIR.value
        )
        print(f"{len(written)} figures in {directory}: {' '.join(sorted(written))}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
