"""Trivial baselines that a trained model must beat, computed on the same records as the model's metrics."""

import numpy as np

from nlvl_tf.eval import metrics


def random_spans(durations, seed=0):
    """One uniformly random span per record: two uniform times in [0, T], sorted. [Q, 1, 2] seconds."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(size=(len(durations), 2)), axis=1) * np.asarray(durations)[:, None]
    return times[:, None, :]


def mean_moment_spans(train_starts, train_ends, train_durations, durations):
    """The training set's mean normalised moment, [mean(start / T), mean(end / T)], placed in each video. [Q, 1, 2]."""
    start = np.mean(np.asarray(train_starts) / np.asarray(train_durations))
    end = np.mean(np.asarray(train_ends) / np.asarray(train_durations))
    return (np.array([start, end])[None, :] * np.asarray(durations)[:, None])[:, None, :]


def evaluate_baselines(train_records, eval_records, seed=0, iou_rule=">="):
    """{"random": metrics, "mean_moment": metrics} (top-1 keys only) on `eval_records` (input_pipeline.Record)."""
    truth = np.array([[r.start_time, r.end_time] for r in eval_records])
    durations = np.array([r.duration for r in eval_records])
    valid = [r for r in train_records if r.moment_valid]
    candidates = {
        "random": random_spans(durations, seed),
        "mean_moment": mean_moment_spans(
            [r.start_time for r in valid], [r.end_time for r in valid], [r.duration for r in valid], durations
        ),
    }
    return {name: metrics.evaluate(spans, truth, ks=(1,), iou_rule=iou_rule) for name, spans in candidates.items()}
