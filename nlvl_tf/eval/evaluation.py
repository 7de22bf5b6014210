"""Evaluation: predictions of a split, the paper's metrics, and the files `evaluate.py` writes.

Metrics follow reference_spec.md section 6: Rank@k IoU >= mu (or > mu: config.eval.iou_rule, decided exactly, see
docs/metrics.md) in percent and mIoU, over every record of the split
(records with start >= end included, so counts match the paper), plus the per-video-length table of Tables 6-7.
Results are keyed by candidate selection strategy everywhere, {selection: {metric: percent}}: VSLNet-L has two
(Pm, U), VSLBase and VSLNet one, "pm" (the most probable span of its only scale). Files flatten a single selection.
"""

import json
import os

import numpy as np
import tensorflow as tf

from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, labels, text
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import decoding, metrics
from nlvl_tf.model import restore

MODEL_INPUT_KEYS = ("video_features", "video_length", "word_ids", "char_ids")


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


def evaluate_split(predict, data, encoder, config):
    """Predictions and metrics of a split; `predict` comes from `make_predict_fn` (made once per model, so
    repeated evaluations reuse its trace).

    Returns:
        (records, predictions as `predict_split`, {selection: metrics dict}).
    """
    records = input_pipeline.eval_records(data, config.data)
    predictions = predict_split(predict, data, encoder, config)
    truth = ground_truth(records)
    results = {
        selection: metrics.evaluate(times, truth, iou_rule=config.eval.iou_rule)
        for selection, (times, _) in predictions.items()
    }
    return records, predictions, results


def selected_metrics(results, config):
    """The metrics reported and used to pick checkpoints: the only set, or VSLNet-L's `config.eval.selection` one."""
    return results[config.eval.selection] if len(results) > 1 else next(iter(results.values()))


def flatten_single(by_selection):
    """What files hold: {selection: value} as is for several selections, the value alone for one."""
    return next(iter(by_selection.values())) if len(by_selection) == 1 else by_selection


def write_results(directory, records, predictions, results, config):
    """Writes metrics.json, length_buckets.json and predictions.jsonl into `directory`.

    metrics.json holds `R1@0.3 ... mIoU` in percent; for VSLNet-L one such object per selection ("pm", "u").
    predictions.jsonl has one line per record: video_id, query, duration, gt, and the ranked predictions with scores
    (`predictions`, or `predictions_pm` and `predictions_u` for VSLNet-L).
    """
    os.makedirs(directory, exist_ok=True)
    truth = ground_truth(records)
    durations = np.array([r.duration for r in records])
    video_ids = [r.video_id for r in records]
    buckets = {
        selection: metrics.by_video_length(durations, video_ids, times, truth, iou_rule=config.eval.iou_rule)
        for selection, (times, _) in predictions.items()
    }
    for name, value in (("metrics.json", results), ("length_buckets.json", buckets)):
        workdir_lib.write_atomically(
            os.path.join(directory, name), json.dumps(flatten_single(value), indent=2, sort_keys=True)
        )
    lines = []
    for index, record in enumerate(records):
        line = {
            "video_id": record.video_id,
            "query": record.query,
            "duration": record.duration,
            "gt": [record.start_time, record.end_time],
        }
        for selection, (times, scores) in predictions.items():
            ranked = [
                {"start": float(s), "end": float(e), "score": float(p)}
                for (s, e), p in zip(times[index], scores[index])
            ]
            line["predictions" + (f"_{selection}" if len(predictions) > 1 else "")] = ranked
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    workdir_lib.write_atomically(os.path.join(directory, "predictions.jsonl"), "".join(lines))


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


def evaluate_workdir(workdir, split=None, checkpoint="best", data_dir=None):
    """Evaluates a training workdir's checkpoint on `split` and writes workdir/eval/<split>/ (see `write_results`)."""
    config, model, encoder, split, data = load_workdir_split(workdir, split, checkpoint, data_dir)
    records, predictions, results = evaluate_split(make_predict_fn(model, config), data, encoder, config)
    write_results(os.path.join(workdir, workdir_lib.EVAL_DIR, split), records, predictions, results, config)
    return results
