"""Figures of what a model does (the paper's Figs. 11, 12 and 14-17), drawn from plain numpy data into PNG files.

Every function takes arrays (no model, no TensorFlow), draws them with matplotlib's Agg canvas (no display and no
pyplot state, so it runs on servers and in tests), saves a PNG at `path` and returns the `matplotlib.figure.Figure`:
the arrays it plotted stay readable from its artists (`line.get_ydata()`, `image.get_array()`, bar heights), which is
how tests check a figure shows the values it was given. `nlvl_tf.figures` gathers those arrays from a trained model
and a split's predictions.

Times are in seconds; a video of duration T with N feature positions has position i covering [i T / N, (i+1) T / N).
"""

import os
import textwrap

import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nlvl_tf import errors

DPI = 110
IOU_BINS = np.linspace(0.0, 1.0, 11)
LENGTH_ERROR_BINS = 21
TRUTH_STYLE = dict(color="tab:green", alpha=0.18, label="ground truth")
PREDICTION_STYLE = dict(color="tab:red", linestyle="--", linewidth=1.6)


def _figure(width, height, rows=1, sharex=False, height_ratios=None):
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(
        rows, 1, sharex=sharex, squeeze=False, gridspec_kw={"height_ratios": height_ratios} if height_ratios else None
    )[:, 0]
    return figure, list(axes)


def _save(figure, path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return figure


def _vector(name, values, length=None):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or (length is not None and len(values) != length):
        expected = f"[{length}]" if length is not None else "1-d"
        raise errors.InputError(f"{name} must be {expected}, got shape {values.shape}")
    return values


def _span(name, span):
    """(start, end) seconds; start > end is drawn as given (datasets hold a few such records, kept in evaluation)."""
    span = np.asarray(span, dtype=np.float64)
    if span.shape != (2,) or not np.all(np.isfinite(span)):
        raise errors.InputError(f"{name} must be finite (start, end) seconds, got {span.tolist()}")
    return span


def _query_title(figure, title, query):
    wrapped = "\n".join(textwrap.wrap(f'"{query}"', 90))
    figure.suptitle(f"{title}\n{wrapped}", fontsize=11)


def _mark_spans(axis, truth, prediction):
    """Shades the ground-truth moment and draws the predicted boundaries as dashed lines."""
    axis.axvspan(*truth, **TRUTH_STYLE)
    axis.axvline(prediction[0], label="prediction", **PREDICTION_STYLE)
    axis.axvline(prediction[1], **PREDICTION_STYLE)


def _figure_legend(figure, axes):
    """One legend below the panels with every labelled artist of `axes` once (no legend box over the data)."""
    entries = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    figure.legend(list(entries.values()), list(entries), loc="outside lower center", ncols=len(entries), fontsize=9)


def plot_query_probabilities(
    path,
    times,
    start_probs,
    end_probs,
    highlight,
    truth,
    prediction,
    duration,
    query,
    title="Start / end probabilities and highlighting (paper Fig. 15)",
):
    """Start and end boundary probabilities (top) and highlighting scores (bottom) of one query along its video.

    Args:
        path: the PNG to write.
        times: [N] centre of every valid feature position, in seconds.
        start_probs, end_probs: [N] softmax probabilities over the valid positions.
        highlight: [N] highlighting scores (sigmoid) or None (VSLBase: the lower panel is left out).
        truth, prediction: (start, end) seconds of the ground-truth and the top-1 predicted moment.
        duration: video length T in seconds (the x range); query: its text, for the title.
    Returns:
        The Figure; lines are labelled "P(start)", "P(end)" and "highlight score".
    """
    times = _vector("times", times)
    start_probs = _vector("start_probs", start_probs, len(times))
    end_probs = _vector("end_probs", end_probs, len(times))
    truth, prediction = _span("truth", truth), _span("prediction", prediction)
    rows = 1 if highlight is None else 2
    figure, axes = _figure(9.0, 3.2 + 1.9 * rows, rows, sharex=True, height_ratios=[3, 2][:rows])
    axes[0].plot(times, start_probs, color="tab:blue", marker=".", label="P(start)")
    axes[0].plot(times, end_probs, color="tab:orange", marker=".", label="P(end)")
    axes[0].set_ylabel("probability")
    axes[0].set_ylim(bottom=0.0)
    if highlight is not None:
        highlight = _vector("highlight", highlight, len(times))
        axes[1].plot(times, highlight, color="tab:purple", marker=".", label="highlight score")
        axes[1].set_ylabel("sigmoid score")
        axes[1].set_ylim(-0.02, 1.02)
    for axis in axes:
        _mark_spans(axis, truth, prediction)
        axis.set_xlim(0.0, duration)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    _figure_legend(figure, axes)
    _query_title(figure, title, query)
    return _save(figure, path)


def plot_similarity(
    path,
    times,
    tokens,
    similarity,
    truth,
    prediction,
    duration,
    query,
    title="Context-query similarity S (paper Fig. 12)",
):
    """The context-query attention's similarity scores as a heat map: query tokens down, video time across.

    Args:
        times: [N] position centres in seconds (evenly spaced); tokens: the M' query tokens the model saw.
        similarity: [N, M'] scores S between each valid video position and each token.
        truth, prediction, duration, query: as in `plot_query_probabilities`.
    Returns:
        The Figure; its image array is `similarity.T` ([M', N]).
    """
    times = _vector("times", times)
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.shape != (len(times), len(tokens)) or not len(tokens):
        raise errors.InputError(
            f"similarity must be [N={len(times)}, tokens={len(tokens)}] with at least one token, got "
            f"shape {similarity.shape}"
        )
    truth, prediction = _span("truth", truth), _span("prediction", prediction)
    figure, (axis,) = _figure(9.0, 1.9 + 0.32 * len(tokens))
    image = axis.imshow(
        similarity.T,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(0.0, duration, len(tokens) - 0.5, -0.5),
    )
    axis.set_yticks(range(len(tokens)), labels=tokens)
    outlined = [patheffects.withStroke(linewidth=3.5, foreground="black")]
    for boundary, label in zip(truth, ("ground truth", None)):
        axis.axvline(boundary, color="white", linewidth=2.0, label=label, path_effects=outlined)
    for boundary, label in zip(prediction, ("prediction", None)):
        axis.axvline(boundary, label=label, **dict(PREDICTION_STYLE, linewidth=2.0))
    axis.set_xlabel("time (s)")
    axis.set_ylabel("query token")
    figure.colorbar(image, ax=axis, label="similarity score S", pad=0.01)
    _figure_legend(figure, [axis])
    _query_title(figure, title, query)
    return _save(figure, path)


def plot_clip_scores(
    path,
    clip_edges,
    clip_scores,
    truth,
    prediction,
    duration,
    query,
    title="VSLNet-L clip scores per scale (paper Fig. 16)",
):
    """Each scale's nil-prediction clip scores along the video, one panel per scale.

    Args:
        clip_edges: {clip_length: [K + 1] clip boundaries in seconds} of the K valid clips of each scale.
        clip_scores: {clip_length: [K] sigmoid of the nil logits of those clips}.
        truth, prediction, duration, query: as in `plot_query_probabilities`.
    Returns:
        The Figure; one `StepPatch` per panel, `get_data()` gives (scores, edges).
    """
    if not clip_scores or set(clip_scores) != set(clip_edges):
        raise errors.InputError(
            f"clip_scores and clip_edges need the same non-empty scales, got {sorted(clip_scores)} "
            f"and {sorted(clip_edges)}"
        )
    truth, prediction = _span("truth", truth), _span("prediction", prediction)
    figure, axes = _figure(9.0, 1.6 + 1.35 * len(clip_scores), len(clip_scores), sharex=True)
    for axis, clip_length in zip(axes, clip_scores):
        edges = _vector(f"clip_edges[{clip_length}]", clip_edges[clip_length])
        scores = _vector(f"clip_scores[{clip_length}]", clip_scores[clip_length], len(edges) - 1)
        axis.stairs(scores, edges, fill=True, color="tab:cyan", alpha=0.8, label="clip score")
        _mark_spans(axis, truth, prediction)
        axis.set_ylim(0.0, 1.05)
        axis.set_xlim(0.0, duration)
        axis.set_ylabel(f"l = {clip_length}\nscore")
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    _figure_legend(figure, axes)
    _query_title(figure, title, query)
    return _save(figure, path)


def _histogram(series, bins, xlabel, title):
    """Side-by-side histograms of several named series; bar heights are the counts per bin."""
    if not series:
        raise errors.InputError("a histogram needs at least one series")
    figure, (axis,) = _figure(8.0, 4.2)
    names = list(series)
    axis.hist(
        [np.asarray(series[name], dtype=np.float64) for name in names],
        bins=bins,
        label=names,
        edgecolor="black",
        linewidth=0.5,
    )
    axis.set_xlabel(xlabel)
    axis.set_ylabel("queries")
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=9)
    return figure, axis


def plot_iou_histogram(path, ious, title="IoU of the top-1 predictions (paper Fig. 14)"):
    """Histogram of the IoU of every query's top-1 prediction, in bins of 0.1.

    Args:
        ious: {series name: [Q] IoU values in [0, 1]}.
    Returns:
        The Figure; one BarContainer per series, labelled with its name.
    """
    figure, axis = _histogram(ious, IOU_BINS, "IoU with the ground-truth moment", title)
    axis.set_xticks(IOU_BINS)
    axis.set_xlim(0.0, 1.0)
    return _save(figure, path)


def length_error_bins(differences):
    """21 bin edges symmetric around 0 s (the middle bin holds the near-exact lengths) spanning the 98th percentile
    of |error| over all series, so that a few outliers do not flatten the histogram."""
    magnitudes = np.abs(np.concatenate([np.asarray(values, np.float64).ravel() for values in differences.values()]))
    largest = float(np.percentile(magnitudes, 98)) if magnitudes.size else 0.0
    largest = largest or float(magnitudes.max(initial=0.0)) or 1.0
    return np.linspace(-largest, largest, LENGTH_ERROR_BINS + 1)


def plot_length_error_histogram(path, differences, title="Predicted minus true moment length (paper Fig. 17)"):
    """Histogram of the top-1 predicted moment length minus the ground-truth length, in seconds.

    Args:
        differences: {series name: [Q] length differences in seconds} (positive = predicted longer).
    Returns:
        The Figure; one BarContainer per series over `length_error_bins`, whose outer bins also count the values
        beyond them.
    """
    if not differences:
        raise errors.InputError("plot_length_error_histogram needs at least one series")
    bins = length_error_bins(differences)
    clipped = {name: np.clip(np.asarray(values, np.float64), bins[0], bins[-1]) for name, values in differences.items()}
    figure, axis = _histogram(
        clipped,
        bins,
        "predicted length - ground-truth length (s); the outer bins include everything beyond them",
        title,
    )
    axis.axvline(0.0, color="black", linewidth=1.0)
    return _save(figure, path)


def _grouped_bars(axis, bin_labels, series, value_format):
    """Bars of several series side by side in every bin; NaN values leave a gap."""
    positions = np.arange(len(bin_labels))
    width = 0.8 / len(series)
    for offset, (name, values) in enumerate(series.items()):
        values = _vector(f"values of {name!r}", values, len(bin_labels))
        bars = axis.bar(
            positions + (offset - (len(series) - 1) / 2) * width,
            values,
            width,
            label=name,
            edgecolor="black",
            linewidth=0.5,
        )
        axis.bar_label(
            bars, labels=["" if np.isnan(v) else value_format.format(v) for v in values], fontsize=8, padding=2
        )
    axis.set_xticks(positions, labels=bin_labels)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=9)


def plot_miou_by_video_length(path, bin_labels, miou, title="mIoU per video length (paper Tables 6-7)"):
    """mIoU of each series per video-length bin, as grouped bars.

    Args:
        bin_labels: [B] names of the bins (e.g. "0-2 min\\n178 queries").
        miou: {series name: [B] mIoU in percent, NaN where the bin has no query}.
    Returns:
        The Figure; one BarContainer per series, labelled with its name.
    """
    if not miou:
        raise errors.InputError("plot_miou_by_video_length needs at least one series")
    figure, (axis,) = _figure(8.0, 4.2)
    _grouped_bars(axis, bin_labels, miou, "{:.1f}")
    axis.set_ylim(0.0, 105.0)
    axis.set_xlabel("video length")
    axis.set_ylabel("mIoU (%)")
    axis.set_title(title)
    return _save(figure, path)


def plot_miou_gain(path, bin_labels, gain, reference, title="mIoU gain per video length (paper Fig. 11)"):
    """Gain in mIoU points of each series over `reference` per video-length bin.

    Args:
        bin_labels: [B] bin names; gain: {series name: [B] mIoU difference in points, NaN where undefined}.
        reference: the name of the model the gains are measured against (for the title).
    Returns:
        The Figure; one BarContainer per series.
    """
    if not gain:
        raise errors.InputError("plot_miou_gain needs at least one series")
    figure, (axis,) = _figure(8.0, 4.2)
    _grouped_bars(axis, bin_labels, gain, "{:+.1f}")
    axis.axhline(0.0, color="black", linewidth=1.0)
    axis.margins(y=0.2)
    axis.set_xlabel("video length")
    axis.set_ylabel(f"mIoU gain over {reference} (points)")
    axis.set_title(title)
    return _save(figure, path)
