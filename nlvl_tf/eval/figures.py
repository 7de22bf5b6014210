"""The data behind the figures, from a trained model and a split's predictions file, and writing a workdir's figures.

`query_views` runs the model on one batch (training=False) and turns its logits into what the per-query figures plot:
masked-softmax start/end probabilities, sigmoid highlighting and VSLNet-L clip scores, the similarity matrix with the
query's tokens (`text.tokenize`, truncated like the model's input) and the top-1 prediction decoded as evaluation
decodes it. The split-wide figures read W/eval/<split>/predictions.jsonl, so any evaluated workdir (a VSLNet one to
compare VSLNet-L with, say) can be drawn without its model. `write_figures` draws them all with `nlvl_tf.plots`.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, labels, text
from nlvl_tf.eval import decoding, evaluation, metrics, plots
from nlvl_tf.model.layers import masking

PLOTS_DIR = "plots"
PREDICTIONS_FILE = "predictions.jsonl"
MODEL_NAMES = {"vslbase": "VSLBase", "vslnet": "VSLNet", "vslnet_l": "VSLNet-L"}
SELECTION_NAMES = {"pm": "Pm", "u": "U"}
DEFAULT_QUERIES = (0,)


@dataclasses.dataclass(frozen=True)
class QueryView:
    """What the per-query figures show of one record (arrays over its N valid positions).

    Attributes:
        index: the record's position in the split (`input_pipeline.eval_records` / predictions.jsonl order).
        times: [N] centre of each feature position in seconds, (i + 0.5) T / N.
        start_probs, end_probs: [N] masked-softmax boundary probabilities (VSLNet-L: of the scale Pm picks).
        highlight: [N] sigmoid highlighting scores, or None (VSLBase).
        tokens: the query tokens the model saw; similarity: [N, len(tokens)] context-query scores, or None
            (VSLNet-L and the "cat" attention return none; an empty query has none to show).
        truth, prediction: (start, end) seconds of the ground truth and of the top-1 prediction.
        clip_length: the VSLNet-L scale of the curves, else None.
        clip_edges, clip_scores: VSLNet-L {clip length: [K + 1] boundaries in seconds, [K] sigmoid nil scores} of
            each scale's valid clips; empty otherwise.
    """

    index: int
    video_id: str
    query: str
    duration: float
    times: np.ndarray
    start_probs: np.ndarray
    end_probs: np.ndarray
    highlight: np.ndarray
    tokens: tuple
    similarity: np.ndarray
    truth: tuple
    prediction: tuple
    clip_length: int = None
    clip_edges: dict = dataclasses.field(default_factory=dict)
    clip_scores: dict = dataclasses.field(default_factory=dict)


def query_views(model, batch, config, rows, first_index=0):
    """Runs `model` on an evaluation batch and gathers the figures' data of the given rows.

    Args:
        model: a VSLBase / VSLNet / VSLNet-L model; batch: a dict from `input_pipeline.eval_batches`.
        config: the run's config (model.name, data.label_method, eval.selection); rows: row numbers in the batch.
        first_index: the split index of the batch's first row (for `QueryView.index`).
    Returns:
        A list of `QueryView`, one per row.
    """
    outputs = model({key: batch[key] for key in evaluation.MODEL_INPUT_KEYS}, training=False)
    length = tf.convert_to_tensor(batch["video_length"])
    multi_scale = config.model.name == "vslnet_l"
    mask = tf.sequence_mask(length, outputs["start_logits"].shape[-1])
    scale_mask = mask[:, tf.newaxis] if multi_scale else mask
    start_probs = masking.masked_softmax(outputs["start_logits"], scale_mask).numpy()
    end_probs = masking.masked_softmax(outputs["end_logits"], scale_mask).numpy()
    highlight = tf.sigmoid(outputs["highlight_logits"]).numpy() if "highlight_logits" in outputs else None
    start, end, _ = decoding.ranked_spans(outputs, length, 1, config.eval.selection)
    start_time, end_time = labels.index_to_time(
        start[:, 0].numpy(), end[:, 0].numpy(), batch["duration"].numpy(), length.numpy(), config.data.label_method
    )
    tokens = text.tokenize(batch["query"]).to_list()
    query_lengths = np.sum(batch["word_ids"].numpy() != text.PAD_ID, axis=1)
    if multi_scale:
        _, _, best = decoding.best_span(start_probs, end_probs, scale_mask)
        scales = np.argmax(best.numpy(), axis=1)  # Pm's scale: ties go to the first
        nil_scores = tf.sigmoid(outputs["nil_logits"]).numpy()
        clip_mask = outputs["clip_mask"].numpy()
    views = []
    for row in rows:
        n, duration = int(length[row]), float(batch["duration"][row])
        row_tokens = tuple(
            token.decode("utf-8", errors="replace") for token in tokens[row][: config.data.max_query_len]
        )
        if len(row_tokens) != query_lengths[row]:
            raise errors.InputError(
                f"record {first_index + row}: the query tokenizes to {len(row_tokens)} tokens but its "
                f"word ids hold {query_lengths[row]} (was the vocabulary built with another tokenizer?)"
            )
        pick = (row, scales[row]) if multi_scale else (row,)
        extra = {}
        if multi_scale:
            extra = dict(
                clip_length=int(config.model.clip_lengths[scales[row]]),
                **_clip_data(nil_scores[row], clip_mask[row], config.model.clip_lengths, n, duration),
            )
        views.append(
            QueryView(
                index=first_index + row,
                video_id=batch["video_id"][row].numpy().decode("utf-8"),
                query=batch["query"][row].numpy().decode("utf-8"),
                duration=duration,
                times=(np.arange(n) + 0.5) * duration / n,
                start_probs=start_probs[pick][:n],
                end_probs=end_probs[pick][:n],
                highlight=None if highlight is None else highlight[pick][:n],
                tokens=row_tokens,
                similarity=(
                    outputs["similarity"][row, :n, : len(row_tokens)].numpy()
                    if "similarity" in outputs and row_tokens
                    else None
                ),
                truth=(float(batch["start_time"][row]), float(batch["end_time"][row])),
                prediction=(float(start_time[row]), float(end_time[row])),
                **extra,
            )
        )
    return views


def _clip_data(nil_scores, clip_mask, clip_lengths, n, duration):
    """{clip_length: [K + 1] edges in seconds}, {clip_length: [K] scores} of each scale's K valid (unmasked) clips.

    nil_scores, clip_mask: [S, Kmax] of one record; n: its valid positions; clip k covers positions [k l, (k+1) l).
    """
    edges, scores = {}, {}
    for scale, clip_length in enumerate(clip_lengths):
        valid = clip_mask[scale]
        positions = np.minimum(np.arange(int(valid.sum()) + 1) * clip_length, n)
        edges[int(clip_length)] = positions * duration / n
        scores[int(clip_length)] = nil_scores[scale][valid]
    return {"clip_edges": edges, "clip_scores": scores}


def collect_query_views(model, data, encoder, config, indices):
    """`query_views` of the records at `indices` of a split (in `eval_records` order), running only their batches.

    Returns:
        A list of `QueryView` in the order of `indices`.
    """
    indices = [int(index) for index in indices]
    bad = [index for index in indices if not 0 <= index < data.num_records]
    if bad:
        raise errors.InputError(f"query indices {bad} are outside the split's {data.num_records} records")
    found, first = {}, 0
    for batch in input_pipeline.eval_batches(data, encoder, config.data, config.eval.batch_size):
        size = int(batch["video_length"].shape[0])
        rows = sorted({index - first for index in indices if first <= index < first + size})
        if rows:
            found.update((view.index, view) for view in query_views(model, batch, config, rows, first))
        first += size
        if len(found) == len(set(indices)):
            break
    return [found[index] for index in indices]


@dataclasses.dataclass(frozen=True)
class SplitPredictions:
    """One predictions.jsonl: durations, video_ids [Q], truth [Q, 2] and {selection: ranked times [Q, K, 2]}
    ("pm" for VSLBase/VSLNet, whose file key is plain "predictions"; "pm" and "u" for VSLNet-L)."""

    durations: np.ndarray
    video_ids: np.ndarray
    truth: np.ndarray
    times: dict


def read_predictions(eval_dir):
    """Reads `eval_dir`/predictions.jsonl (written by `evaluation.write_results`)."""
    path = os.path.join(eval_dir, PREDICTIONS_FILE)
    if not os.path.exists(path):
        raise errors.NotFoundError(
            f"{path} not found: evaluate the workdir on this split first (experiments/evaluate.py)"
        )
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if not lines:
        raise errors.InputError(f"{path} holds no predictions")
    if any(line["gt"] is None for line in lines):
        raise errors.InputError(
            f"{path}: records without ground truth (a split released without times): nothing to draw"
        )
    keys = [key for key in lines[0] if key.startswith("predictions")]
    times = {
        (key.partition("_")[2] or decoding.SELECTIONS[0]): np.array(
            [[[p["start"], p["end"]] for p in line[key]] for line in lines]
        )
        for key in keys
    }
    return SplitPredictions(
        durations=np.array([line["duration"] for line in lines], np.float64),
        video_ids=np.array([line["video_id"] for line in lines]),
        truth=np.array([line["gt"] for line in lines], np.float64),
        times=times,
    )


def series_name(config, selection):
    """A model's name in legends: "VSLNet", or "VSLNet-L-Pm" for one VSLNet-L selection strategy."""
    name = MODEL_NAMES.get(config.model.name, config.model.name)
    return f"{name}-{SELECTION_NAMES[selection]}" if config.model.name == "vslnet_l" else name


def top1_ious(times, truth):
    """[Q] IoU of each top-1 prediction (times [Q, K, 2]) with its ground truth [Q, 2]."""
    return metrics.temporal_iou(times[:, 0], truth)


def length_errors(times, truth):
    """[Q] top-1 predicted length minus ground-truth length, in seconds."""
    return (times[:, 0, 1] - times[:, 0, 0]) - (truth[:, 1] - truth[:, 0])


def bucket_miou(predictions, times):
    """(bin names, [bins] mIoU with NaN for empty bins, [bins] query counts) of `metrics.by_video_length`."""
    buckets = metrics.by_video_length(predictions.durations, predictions.video_ids, times, predictions.truth)
    miou = np.array([np.nan if b["metrics"] is None else b["metrics"]["mIoU"] for b in buckets])
    return [b["bin"] for b in buckets], miou, np.array([b["queries"] for b in buckets])


def split_figures(directory, series, reference=None):
    """Writes the split-wide figures of some models' predictions on one split.

    Args:
        directory: where the PNGs go.
        series: {name: (SplitPredictions, selection)}, the models to show.
        reference: (name, SplitPredictions, selection) of a model to compare with: it joins the histograms and the
            mIoU bars, and `miou_gain_by_video_length.png` shows each series' gain over it.
    Returns:
        {file name: Figure}.
    """
    shown = dict(series)
    if reference is not None:
        shown[reference[0]] = reference[1:]
    ious = {name: top1_ious(p.times[s], p.truth) for name, (p, s) in shown.items()}
    differences = {name: length_errors(p.times[s], p.truth) for name, (p, s) in shown.items()}
    buckets = {name: bucket_miou(p, p.times[s]) for name, (p, s) in shown.items()}
    bin_names, _, counts = next(iter(buckets.values()))
    for name, (_, _, other_counts) in buckets.items():
        if not np.array_equal(other_counts, counts):
            raise errors.InputError(
                f"{name} has {other_counts.tolist()} queries per video-length bin, "
                f"{next(iter(buckets))} {counts.tolist()}: the predictions are not of the same split"
            )
    used = counts > 0
    bin_labels = [f"{bin_name}\n{count} queries" for bin_name, count in zip(np.array(bin_names)[used], counts[used])]
    figures = {
        "iou_histogram.png": plots.plot_iou_histogram(os.path.join(directory, "iou_histogram.png"), ious),
        "length_error_histogram.png": plots.plot_length_error_histogram(
            os.path.join(directory, "length_error_histogram.png"), differences
        ),
        "miou_by_video_length.png": plots.plot_miou_by_video_length(
            os.path.join(directory, "miou_by_video_length.png"),
            bin_labels,
            {name: miou[used] for name, (_, miou, _) in buckets.items()},
        ),
    }
    if reference is not None:
        base = buckets[reference[0]][1][used]
        gain = {name: buckets[name][1][used] - base for name in series}
        figures["miou_gain_by_video_length.png"] = plots.plot_miou_gain(
            os.path.join(directory, "miou_gain_by_video_length.png"), bin_labels, gain, reference[0]
        )
    return figures


def query_figures(directory, view):
    """Writes the per-query figures of one `QueryView` as query_<index>_*.png; returns {file name: Figure}."""
    common = dict(truth=view.truth, prediction=view.prediction, duration=view.duration, query=view.query)
    prefix = f"query_{view.index}_"
    scale = f" (scale l = {view.clip_length})" if view.clip_length else ""
    figures = {
        prefix + "probabilities.png": plots.plot_query_probabilities(
            os.path.join(directory, prefix + "probabilities.png"),
            view.times,
            view.start_probs,
            view.end_probs,
            view.highlight,
            title=f"Start / end probabilities and highlighting{scale} (paper Fig. 15)",
            **common,
        )
    }
    if view.similarity is not None:
        figures[prefix + "similarity.png"] = plots.plot_similarity(
            os.path.join(directory, prefix + "similarity.png"), view.times, view.tokens, view.similarity, **common
        )
    if view.clip_scores:
        figures[prefix + "clip_scores.png"] = plots.plot_clip_scores(
            os.path.join(directory, prefix + "clip_scores.png"), view.clip_edges, view.clip_scores, **common
        )
    return figures


def write_figures(
    workdir, split=None, checkpoint="best", data_dir=None, query_indices=DEFAULT_QUERIES, compare_workdir=None
):
    """Draws a workdir's figures of an evaluated split into W/eval/<split>/plots/.

    Per query in `query_indices` (split order, as predictions.jsonl): query_<i>_probabilities.png,
    query_<i>_similarity.png (models with a similarity matrix) and query_<i>_clip_scores.png (VSLNet-L). For the
    split: iou_histogram.png, length_error_histogram.png, miou_by_video_length.png and, with `compare_workdir`
    (evaluated on the same split), miou_gain_by_video_length.png, the gain over that workdir's model.

    Returns:
        (the plots directory, {file name: Figure}).
    """
    config = workdir_lib.load_config(workdir)
    split = split or config.eval.split
    directory = os.path.join(workdir, workdir_lib.EVAL_DIR, split, PLOTS_DIR)
    predictions = read_predictions(os.path.join(workdir, workdir_lib.EVAL_DIR, split))
    series = {series_name(config, selection): (predictions, selection) for selection in predictions.times}
    reference = None
    if compare_workdir:
        compare_config = workdir_lib.load_config(compare_workdir)
        compare_predictions = read_predictions(os.path.join(compare_workdir, workdir_lib.EVAL_DIR, split))
        selection = compare_config.eval.selection if compare_config.model.name == "vslnet_l" else "pm"
        name = series_name(compare_config, selection)
        if name in series:
            name = f"{name} ({os.path.basename(os.path.normpath(compare_workdir))})"
        reference = (name, compare_predictions, selection)
    figures = split_figures(directory, series, reference)
    if query_indices:
        config, model, encoder, split, data = evaluation.load_workdir_split(workdir, split, checkpoint, data_dir)
        for view in collect_query_views(model, data, encoder, config, query_indices):
            figures.update(query_figures(directory, view))
    return directory, figures
