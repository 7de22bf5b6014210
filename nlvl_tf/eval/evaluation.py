"""Evaluation: predictions of a split, the paper's metrics, and the files `evaluate.py` writes.

Metrics follow docs/model.md section 6: Rank@k IoU >= mu (or > mu: config.eval.iou_rule, decided exactly, see
docs/metrics.md) in percent and mIoU, over every record of the split
(records with start >= end included, so counts match the paper), plus the per-video-length table of Tables 6-7.
Results are keyed by candidate selection strategy everywhere, {selection: {metric: percent}}: VSLNet-L has two
(Pm, U), VSLBase and VSLNet one, "pm" (the most probable span of its only scale). Files flatten a single selection.
Records without ground truth (a test split released without times) are predicted, never scored. With
`config.eval.ego4d_metric`, the Ego4D NLQ evaluator's numbers (`ego4d_nlq`) are computed beside ours, and a split's
predictions can be written as an Ego4D challenge submission.
"""

import dataclasses
import json
import math
import os

import numpy as np
import tensorflow as tf

from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, labels, text
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import decoding, ego4d_nlq, metrics
from nlvl_tf.model import restore

MODEL_INPUT_KEYS = ("video_features", "video_length", "word_ids", "char_ids")
EGO4D_METRICS_FILE = "ego4d_metrics.json"


def selections(config):
    """The candidate selection strategies evaluated for this model: ("pm", "u") for VSLNet-L, else ("pm",)."""
    return decoding.SELECTIONS if config.model.name == "vslnet_l" else (decoding.SELECTIONS[0],)


def make_predict_fn(model, config):
    """A traced function: batch -> {selection: (start_time, end_time, score)}, each [B, top_k], in seconds."""

    @tf.function(reduce_retracing=True)
    def predict(batch):
        outputs = model({key: batch[key] for key in MODEL_INPUT_KEYS}, training=False)
        results = {}
        for selection in selections(config):
            start, end, score = decoding.ranked_spans(outputs, batch["video_length"], config.eval.top_k, selection)
            start_time, end_time = labels.index_to_time(
                start, end, batch["duration"], batch["video_length"], config.data.label_method
            )
            results[selection] = (start_time, end_time, score)
        return results

    return predict


def predict_split(predict, data, encoder, config):
    """Runs `predict` (from `make_predict_fn`) over every record of a split, in `input_pipeline.eval_records` order.

    Returns:
        {selection: (times float64 [Q, top_k, 2], scores float64 [Q, top_k])}.
    """
    collected = {selection: ([], []) for selection in selections(config)}
    for batch in input_pipeline.eval_batches(data, encoder, config.data, config.eval.batch_size):
        for selection, (start, end, score) in predict(batch).items():
            collected[selection][0].append(np.stack([start.numpy(), end.numpy()], axis=-1))
            collected[selection][1].append(score.numpy())
    return {
        selection: (np.concatenate(times).astype(np.float64), np.concatenate(scores).astype(np.float64))
        for selection, (times, scores) in collected.items()
    }


def ground_truth(records):
    """[Q, 2] ground-truth moments in seconds of `input_pipeline.eval_records`."""
    return np.array([[r.start_time, r.end_time] for r in records], np.float64)


def scored(records):
    """Indices of the records that have ground truth (all but a test split's queries released without times)."""
    return np.array([index for index, record in enumerate(records) if record.annotated], np.int64)


def evaluate_split(predict, data, encoder, config):
    """Predictions and metrics of a split; `predict` comes from `make_predict_fn` (made once per model, so
    repeated evaluations reuse its trace). Every record is predicted; metrics cover those with ground truth.

    Returns:
        (records, predictions as `predict_split`, {selection: metrics dict}, empty when no record has ground truth).
    """
    records = input_pipeline.eval_records(data, config.data)
    predictions = predict_split(predict, data, encoder, config)
    rows = scored(records)
    if len(rows) == 0:
        return records, predictions, {}
    truth = ground_truth(records)[rows]
    results = {
        selection: metrics.evaluate(times[rows], truth, iou_rule=config.eval.iou_rule)
        for selection, (times, _) in predictions.items()
    }
    return records, predictions, results


def ego4d_results(records, predictions):
    """{selection: the Ego4D NLQ evaluator's numbers} over the records with ground truth, {} when none has.

    The ground truth is the query's unclipped `clip_start_sec` / `clip_end_sec` when the dataset has them (Ego4D, what
    the official evaluator reads), else the record's moment, so any dataset can be scored the Ego4D way.
    """
    rows = scored(records)
    if len(rows) == 0:
        return {}
    truth = [
        [record.fields.get("clip_start_sec", record.start_time), record.fields.get("clip_end_sec", record.end_time)]
        for record in (records[row] for row in rows)
    ]
    return {selection: ego4d_nlq.score(times[rows], truth) for selection, (times, _) in predictions.items()}


def selected_metrics(results, config):
    """The metrics reported and used to pick checkpoints: the only set, or VSLNet-L's `config.eval.selection` one."""
    return results[config.eval.selection] if len(results) > 1 else next(iter(results.values()))


def flatten_single(by_selection):
    """What files hold: {selection: value} as is for several selections, the value alone for one."""
    return next(iter(by_selection.values())) if len(by_selection) == 1 else by_selection


def write_results(directory, records, predictions, results, config, ego4d=None):
    """Writes metrics.json, length_buckets.json, predictions.jsonl and, given Ego4D results, ego4d_metrics.json into
    `directory`.

    metrics.json holds `R1@0.3 ... mIoU` in percent; for VSLNet-L one such object per selection ("pm", "u"). A split
    without ground truth gets neither metrics file. predictions.jsonl has one line per record: video_id, query,
    duration, gt (null without ground truth), the ranked predictions with scores (`predictions`, or `predictions_pm`
    and `predictions_u` for VSLNet-L), and the dataset's extra fields (`fields`, e.g. Ego4D's ids) when it has any.
    """
    os.makedirs(directory, exist_ok=True)
    rows = scored(records)
    files = []
    if len(rows):
        durations = np.array([r.duration for r in records])[rows]
        video_ids = [records[row].video_id for row in rows]
        buckets = {
            selection: metrics.by_video_length(
                durations, video_ids, times[rows], ground_truth(records)[rows], iou_rule=config.eval.iou_rule
            )
            for selection, (times, _) in predictions.items()
        }
        files = [("metrics.json", results), ("length_buckets.json", buckets)]
    if ego4d:
        files.append((EGO4D_METRICS_FILE, ego4d))
    for name, value in files:
        workdir_lib.write_atomically(
            os.path.join(directory, name), json.dumps(flatten_single(value), indent=2, sort_keys=True)
        )
    lines = []
    for index, record in enumerate(records):
        line = {
            "video_id": record.video_id,
            "query": record.query,
            "duration": record.duration,
            "gt": [record.start_time, record.end_time] if record.annotated else None,
        }
        for selection, (times, scores) in predictions.items():
            ranked = [
                {"start": float(s), "end": float(e), "score": float(p)}
                for (s, e), p in zip(times[index], scores[index])
            ]
            line["predictions" + (f"_{selection}" if len(predictions) > 1 else "")] = ranked
        if record.fields:
            line["fields"] = {key: _json_value(value) for key, value in record.fields.items()}
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    workdir_lib.write_atomically(os.path.join(directory, "predictions.jsonl"), "".join(lines))


def _json_value(value):
    """NaN (a time the dataset does not have) as null: JSON has no NaN."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_submission(path, records, predictions, config):
    """Writes the Ego4D NLQ challenge file of a split's predictions (the reported selection for VSLNet-L), validated,
    whole or not at all (`ego4d_nlq.write_submission`)."""
    times, _ = predictions[config.eval.selection] if len(predictions) > 1 else next(iter(predictions.values()))
    ego4d_nlq.write_submission(path, ego4d_nlq.submission(records, times))


@dataclasses.dataclass
class SplitEvaluation:
    """What evaluating one split produced: our metrics ({} without ground truth), the Ego4D evaluator's (None unless
    asked for), how many records were predicted and scored, and where the files went."""

    split: str
    results: dict
    ego4d: dict | None
    num_records: int
    num_scored: int
    directory: str
    iou_rule: str
    submission: str | None = None


def evaluate_and_write(predict, data, encoder, config, split, directory, ego4d_metric=False, submission=None):
    """`evaluate_split`, then `write_results` into `directory` and, with `submission` (a path), the challenge file."""
    records, predictions, results = evaluate_split(predict, data, encoder, config)
    ego4d = ego4d_results(records, predictions) if ego4d_metric else None
    write_results(directory, records, predictions, results, config, ego4d)
    if submission:
        write_submission(submission, records, predictions, config)
    num_scored = len(scored(records))
    return SplitEvaluation(split, results, ego4d, len(records), num_scored, directory, config.eval.iou_rule, submission)


def load_workdir_split(workdir, split=None, checkpoint="best", data_dir=None):
    """A workdir's trained model and the split it runs on (evaluation, figures).

    Returns:
        (config, model, encoder, split name, SplitData); `split` defaults to config.eval.split and `data_dir`
        overrides the TFDS data dir recorded in the config.
    """
    config, _, model = restore.load_trained_model(workdir, checkpoint)
    if data_dir is not None:
        config.data.data_dir = data_dir
    split = split or config.eval.split
    data = splits_lib.load_splits(config.data, [split])[split]
    encoder = text.QueryEncoder.from_config(os.path.join(workdir, workdir_lib.VOCABULARY_DIR), config.data)
    return config, model, encoder, split, data


def evaluate_workdir(workdir, split=None, checkpoint="best", data_dir=None, ego4d_metric=None, submission=None):
    """Evaluates a training workdir's checkpoint on `split` and writes workdir/eval/<split>/ (see `write_results`).

    Args:
        ego4d_metric: also score with the Ego4D NLQ evaluator's rules; None: as config.eval.ego4d_metric says.
        submission: a path to write the split's Ego4D challenge file to; None: no file.
    Returns:
        A `SplitEvaluation`.
    """
    config, model, encoder, split, data = load_workdir_split(workdir, split, checkpoint, data_dir)
    directory = os.path.join(workdir, workdir_lib.EVAL_DIR, split)
    ego4d_metric = config.eval.ego4d_metric if ego4d_metric is None else ego4d_metric
    return evaluate_and_write(
        make_predict_fn(model, config), data, encoder, config, split, directory, ego4d_metric, submission
    )
