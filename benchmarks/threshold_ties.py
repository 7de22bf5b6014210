r"""Counts the exact threshold ties of an evaluation and what float32 times made of them (docs/metrics.md).

Reads the predictions.jsonl that evaluate.py / training wrote and prints, per metric: Rank@k at ">=" and at ">"
(decided exactly, `metrics.iou_passes`), the queries whose best top-k IoU is exactly mu (the two differ by those),
and Rank@k as the float32 pipeline before datasets 1.1.0 computed it (every time rounded to float32, IoU in float64,
IoU >= mu), with the queries whose decision that changes (all of them ties, or not).

  python benchmarks/threshold_ties.py --predictions=W/eval/test/predictions.jsonl [--selection=pm]
"""

import json

import numpy as np
from absl import flags

from nlvl_tf import cli
from nlvl_tf.eval import metrics

_PREDICTIONS = flags.DEFINE_string("predictions", None, "A predictions.jsonl written by evaluation.")
_SELECTION = flags.DEFINE_string("selection", "pm", "VSLNet-L files: which ranked list (pm or u).")
KS = (1, 5)


def read_predictions(path, selection="pm"):
    """(predictions [Q, K, 2], ground truth [Q, 2]) in float64 seconds from a predictions.jsonl."""
    predictions, truth = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["gt"] is None:  # a query released without times: not scored
                continue
            ranked = record.get("predictions", record.get(f"predictions_{selection}"))
            predictions.append([[p["start"], p["end"]] for p in ranked])
            truth.append(record["gt"])
    return np.array(predictions, np.float64), np.array(truth, np.float64)


def float32_hits(predictions, truth, threshold):
    """bool [Q, K]: IoU >= mu with every time rounded to float32, as the pipeline computed it before."""
    rounded = predictions.astype(np.float32).astype(np.float64)
    iou = metrics.temporal_iou(rounded, truth.astype(np.float32).astype(np.float64)[:, None, :])
    return iou >= threshold


def tie_rows(predictions, truth, ks=KS, thresholds=metrics.DEFAULT_THRESHOLDS):
    """One row per metric: {"metric", ">=", ">", "ties", "float32", "float32_changed", "float32_changed_not_ties"}
    (Rank@k in percent; the rest are query counts)."""
    rows = []
    for threshold in thresholds:
        at_least = metrics.iou_passes(predictions, truth[:, None, :], threshold)
        above = metrics.iou_passes(predictions, truth[:, None, :], threshold, iou_rule=">")
        legacy = float32_hits(predictions, truth, threshold)
        for k in ks:
            hit, strict, old = (hits[:, :k].any(axis=1) for hits in (at_least, above, legacy))
            ties = hit & ~strict
            changed = hit != old
            rows.append(
                {
                    "metric": metrics.metric_key(k, threshold),
                    ">=": 100.0 * hit.mean(),
                    ">": 100.0 * strict.mean(),
                    "ties": int(ties.sum()),
                    "float32": 100.0 * old.mean(),
                    "float32_changed": int(changed.sum()),
                    "float32_changed_not_ties": int((changed & ~ties).sum()),
                }
            )
    return rows


def main(argv):
    cli.reject_extra_arguments(argv)
    predictions, truth = read_predictions(_PREDICTIONS.value, _SELECTION.value)
    print(f"{_PREDICTIONS.value}: {len(truth)} queries, {predictions.shape[1]} ranked predictions each")
    print(f"{'metric':>8} {'>=':>7} {'>':>7} {'ties':>5} {'float32':>8} {'changed':>8} {'not ties':>9}")
    for row in tie_rows(predictions, truth):
        print(
            f"{row['metric']:>8} {row['>=']:7.2f} {row['>']:7.2f} {row['ties']:5d} {row['float32']:8.2f} "
            f"{row['float32_changed']:8d} {row['float32_changed_not_ties']:9d}"
        )


if __name__ == "__main__":
    flags.mark_flags_as_required(["predictions"])
    cli.run(main)
