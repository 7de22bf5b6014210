"""Evaluates a trained workdir's best checkpoint (or its latest, with --checkpoint=latest) on a split and writes
W/eval/<split>/metrics.json, length_buckets.json and predictions.jsonl; with --plots, also the figures of
nlvl_tf.figures in W/eval/<split>/plots/. For Ego4D NLQ (config.eval.ego4d_metric, or --ego4d_metric for any
dataset) it also prints and writes (ego4d_metrics.json) the official evaluator's numbers, and --submission writes
the split's predictions as a challenge file.

On a sweep directory (sweep.py's W), re-evaluates every seed's checkpoint (writing each W/seed_<seed>/eval/<split>/
as above), prints the table over seeds and writes it to W/eval/<split>/summary.json and summary.txt.

    python experiments/evaluate.py --workdir=/tmp/run [--split=test]
    python experiments/evaluate.py --workdir=/tmp/sweep [--split=test]
    python experiments/evaluate.py --workdir=/tmp/ego4d --split=validation      # both conventions
    python experiments/evaluate.py --workdir=/tmp/ego4d --split=test --submission=/tmp/nlq_submission.json
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
_EGO4D_METRIC = flags.DEFINE_bool(
    "ego4d_metric", None, "Also score with the Ego4D NLQ evaluator's rules; default: the config's eval.ego4d_metric."
)
_SUBMISSION = flags.DEFINE_string(
    "submission", None, "Write the split's predictions as an Ego4D NLQ challenge submission (JSON) to this path."
)
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


def _metric_lines(results, header):
    lines = [header]
    for selection, values in results.items():
        prefix = f"  [{selection}] " if len(results) > 1 else "  "
        lines.append(prefix + " ".join(f"{key} {value:.2f}" for key, value in values.items()))
    return lines


def report_lines(report):
    """What evaluate.py prints: our metrics, the Ego4D evaluator's when computed, and where the files went."""
    lines = []
    if report.results:
        header = f"{report.split}: {report.num_scored} queries with ground truth (Rank@k: IoU {report.iou_rule} mu):"
        lines += _metric_lines(report.results, header)
    else:
        lines.append(f"{report.split}: no ground truth (a test split): {report.num_records} queries predicted")
    if report.ego4d:
        header = (
            f"Ego4D NLQ evaluator (IoU > mu over the span covering both, averaged over the {report.num_scored} "
            "predictions scored, mIoU of the top-1):"
        )
        lines += _metric_lines(report.ego4d, header)
    lines.append(f"files: {report.directory}")
    if report.submission:
        lines.append(f"submission: {report.submission} ({report.num_records} queries)")
    return lines


def main(argv):
    cli.reject_extra_arguments(argv)
    plot_flags = [flag for flag in ("plot_queries", "plot_indices", "compare_workdir") if flags.FLAGS[flag].present]
    if plot_flags and not _PLOTS.value:
        raise app.UsageError(f"--{', --'.join(plot_flags)} need --plots")
    if workdir_lib.is_sweep(_WORKDIR.value):
        one_run_flags = [flag for flag in ("plots", "submission", "ego4d_metric") if flags.FLAGS[flag].present]
        if one_run_flags:
            raise app.UsageError(
                f"--{', --'.join(one_run_flags)}: for one run; give one seed's workdir, W/seed_<seed>, not the sweep"
            )
        print(
            summary.format_table(
                summary.evaluate_sweep(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value)
            )
        )
        return
    report = evaluation.evaluate_workdir(
        _WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value, _EGO4D_METRIC.value, _SUBMISSION.value
    )
    print("\n".join(report_lines(report)))
    if _PLOTS.value:
        directory, written = figures.write_figures(
            _WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _DATA_DIR.value, _query_indices(), _COMPARE_WORKDIR.value
        )
        print(f"{len(written)} figures in {directory}: {' '.join(sorted(written))}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cli.run(main)
