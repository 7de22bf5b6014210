"""Results over seeds: the statistics of a sweep's per-seed metrics, their table, and re-evaluating a sweep.

A sweep directory holds one training workdir per seed (`workdir.seed_dir`). Its summary (`summary.json`) records the
per-seed metrics and, for every metric (of every selection, for VSLNet-L), the mean, the sample standard deviation
(ddof=1, the spread one would expect between two runs of the same command; null with a single seed), the minimum and
the maximum over seeds. Metrics keep the shape of the files: {metric: percent}, or {selection: {metric: percent}}.
"""

import json
import os

import numpy as np

from nlvl_tf import errors
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.eval import evaluation

STATISTICS = ("mean", "std", "min", "max")
STD_MEANING = "sample standard deviation over seeds (ddof=1); null with one seed"


def _leaves(tree, prefix=()):
    """(path, value) of every number in a nested dict, in its order."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def statistics(values):
    """{mean, std (sample, ddof=1; None for one value), min, max} of a list of numbers."""
    values = np.asarray(values, np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else None,
        "min": float(values.min()),
        "max": float(values.max()),
    }


def summarize(per_seed, split, checkpoint="best"):
    """The summary of a sweep from {seed: metrics} (metrics as the files hold them).

    Returns:
        {"split", "checkpoint", "seeds", "std", "per_seed": [{"seed", "metrics"}], "statistics"}, where
        "statistics" has the metrics' shape with {mean, std, min, max} in place of each number.

    Raises:
        ValueError when the seeds do not report the same metrics.
    """
    if not per_seed:
        raise errors.InputError("a sweep summary needs at least one seed's metrics")
    seeds = list(per_seed)
    paths = [path for path, _ in _leaves(per_seed[seeds[0]])]
    for seed in seeds[1:]:
        other = [path for path, _ in _leaves(per_seed[seed])]
        if other != paths:
            raise errors.InputError(f"seed {seed} reports metrics {other}, seed {seeds[0]} reports {paths}")
    columns = {path: [] for path in paths}
    for seed in seeds:
        for path, value in _leaves(per_seed[seed]):
            columns[path].append(value)
    stats = {}
    for path, values in columns.items():
        _set(stats, path, statistics(values))
    return {
        "split": split,
        "checkpoint": checkpoint,
        "seeds": seeds,
        "std": STD_MEANING,
        "per_seed": [{"seed": seed, "metrics": per_seed[seed]} for seed in seeds],
        "statistics": stats,
    }


def format_table(summary):
    """The per-seed rows and the mean, std, min and max rows of every metric, one block per selection."""
    seeds = summary["seeds"]
    lines = [
        f"{len(seeds)} seed{'s' * (len(seeds) != 1)} on the {summary['split']} split ({summary['checkpoint']} "
        f"checkpoints), percent; std: {summary['std']}"
    ]
    # {selection: {metric: ...}} for both shapes; a single selection is named "" (no block header).
    nested = all(isinstance(value, dict) for value in summary["per_seed"][0]["metrics"].values())

    def by_selection(tree):
        return tree if nested else {"": tree}

    per_seed = {row["seed"]: by_selection(row["metrics"]) for row in summary["per_seed"]}
    for selection, stats in by_selection(summary["statistics"]).items():
        if selection:
            lines.append(f"[{selection}]")
        names = list(stats)
        width = max(len(str(seed)) for seed in seeds + ["seed"]) + 2
        lines.append("seed".ljust(width) + "".join(name.rjust(9) for name in names))
        for seed in seeds:
            lines.append(str(seed).ljust(width) + "".join(f"{per_seed[seed][selection][n]:9.2f}" for n in names))
        for statistic in STATISTICS:
            cells = (stats[name][statistic] for name in names)
            lines.append(statistic.ljust(width) + "".join("-".rjust(9) if v is None else f"{v:9.2f}" for v in cells))
    return "\n".join(lines)


def write_summary(directory, summary):
    """Writes `summary.json` and its table `summary.txt` into `directory` (each whole or not at all)."""
    os.makedirs(directory, exist_ok=True)
    workdir_lib.write_atomically(
        os.path.join(directory, workdir_lib.SWEEP_SUMMARY_FILE), json.dumps(summary, indent=2) + "\n"
    )
    workdir_lib.write_atomically(os.path.join(directory, workdir_lib.SWEEP_TABLE_FILE), format_table(summary) + "\n")


def finished_seeds(sweep_dir):
    """The seeds of `sweep_dir` whose run has finished, ascending.

    Raises:
        ValueError naming the seeds whose run has not finished (no result file).
    """
    seeds = workdir_lib.sweep_seeds(sweep_dir)
    if not seeds:
        raise errors.NotFoundError(f"{sweep_dir} holds no seed_<seed> workdirs: not a sweep (sweep.py writes them)")
    unfinished = [
        seed
        for seed in seeds
        if not os.path.exists(os.path.join(workdir_lib.seed_dir(sweep_dir, seed), workdir_lib.SEED_RESULT_FILE))
    ]
    if unfinished:
        raise errors.InputError(
            f"{sweep_dir}: the runs of seeds {unfinished} have not finished: run sweep.py again with the same "
            f"command to finish them, or evaluate one seed's workdir ({workdir_lib.seed_dir(sweep_dir, unfinished[0])})"
        )
    return seeds


def evaluate_sweep(sweep_dir, split=None, checkpoint="best", data_dir=None):
    """Re-evaluates every seed's checkpoint of a finished sweep as `evaluation.evaluate_workdir` (writing each seed's
    eval/<split>/ files) and writes the summary over seeds into sweep_dir/eval/<split>/.

    Returns:
        The summary (see `summarize`).
    """
    per_seed = {}
    for seed in finished_seeds(sweep_dir):
        directory = workdir_lib.seed_dir(sweep_dir, seed)
        split = split or workdir_lib.load_config(directory).eval.split
        per_seed[seed] = evaluation.flatten_single(
            evaluation.evaluate_workdir(directory, split, checkpoint, data_dir).results
        )
    result = summarize(per_seed, split, checkpoint)
    write_summary(os.path.join(sweep_dir, workdir_lib.EVAL_DIR, split), result)
    return result
