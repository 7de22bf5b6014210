"""Figures (nlvl_tf.plots, nlvl_tf.figures, evaluate.py --plots): every figure is a valid, non-blank PNG, and what it
plots is the model's outputs (recomputed here from a separate forward pass), the IoUs and length errors of the
predictions file, and the per-video-length metrics evaluation wrote."""

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import configs
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, text
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import evaluation, figures, metrics, plots
from nlvl_tf.model import restore, vslnet
from nlvl_tf.train import trainer

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# One evaluation batch for the whole test split: a single trace of VSLNet-L's predict function.
TINY_VSLNET_L = {
    "model": {"name": "vslnet_l", "clip_lengths": (16, 32), "hidden_size": 16, "num_heads": 2},
    "eval": {"batch_size": 256},
}


def smoke_config(data_dir, variant=None):
    """The synthetic smoke config on `data_dir`, optionally changed by a variant ({section: {key: value}})."""
    spec = importlib.util.spec_from_file_location("synthetic", REPO / "experiments" / "configs" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("smoke")
    if variant:
        with config.unlocked():
            configs.apply_variant(config, {"tiny": variant}, "tiny")
    config.data.data_dir = data_dir
    return config


@pytest.fixture(scope="module")
def vslnet_workdir(synthetic_data_dir, tmp_path_factory):
    """A VSLNet smoke run trained for one epoch (evaluated on the test split by training)."""
    workdir = str(tmp_path_factory.mktemp("vslnet"))
    config = smoke_config(synthetic_data_dir)
    config.train.epochs = 1
    trainer.train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture(scope="module")
def vslnet_l_workdir(vslnet_workdir, synthetic_data_dir, tmp_path_factory):
    """A tiny untrained VSLNet-L saved as a workdir (VSLNet's vocabulary, two scales), evaluated on the test split."""
    workdir = str(tmp_path_factory.mktemp("vslnet_l"))
    feature_dim = workdir_lib.load_config(vslnet_workdir).model.video_feature_dim
    config = configs.resolve(smoke_config(synthetic_data_dir, TINY_VSLNET_L), feature_dim)
    shutil.copytree(
        os.path.join(vslnet_workdir, workdir_lib.VOCABULARY_DIR), os.path.join(workdir, workdir_lib.VOCABULARY_DIR)
    )
    vocabulary = text.Vocabulary.load(os.path.join(workdir, workdir_lib.VOCABULARY_DIR))
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    tf.train.Checkpoint(model=model).save(os.path.join(workdir, workdir_lib.BEST_DIR, "ckpt"))
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE), "w", encoding="utf-8") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    evaluation.evaluate_workdir(workdir)
    return workdir


def forward_pass(workdir, data_dir, index):
    """The batch row and the model outputs of test record `index`, from a separate load and forward pass."""
    config, _, model = restore.load_trained_model(workdir)
    config.data.data_dir = data_dir
    data = splits_lib.load_splits(config.data, ["test"])["test"]
    encoder = text.QueryEncoder.from_config(os.path.join(workdir, workdir_lib.VOCABULARY_DIR), config.data)
    batch = next(iter(input_pipeline.eval_batches(data, encoder, config.data, config.eval.batch_size)))
    assert index < len(batch["video_length"])
    outputs = model({key: batch[key] for key in evaluation.MODEL_INPUT_KEYS}, training=False)
    row = {key: value[index].numpy() for key, value in batch.items()}
    return config, row, {key: value[index].numpy().astype(np.float64) for key, value in outputs.items()}


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-logits))


def prediction_lines(workdir, selection=""):
    path = os.path.join(workdir, workdir_lib.EVAL_DIR, "test", "predictions.jsonl")
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    key = "predictions" + (f"_{selection}" if selection else "")
    truth = np.array([line["gt"] for line in lines])
    top1 = np.array([[line[key][0]["start"], line[key][0]["end"]] for line in lines])
    return lines, truth, top1


def length_buckets(workdir):
    with open(os.path.join(workdir, workdir_lib.EVAL_DIR, "test", "length_buckets.json"), encoding="utf-8") as f:
        return json.load(f)


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200, (path, pixels.shape)
    assert pixels[..., :3].var() > 0, f"{path} is blank"


def lines_by_label(axis):
    return {line.get_label(): line for line in axis.get_lines()}


def boundaries(axis, label="prediction"):
    """x of the vertical lines drawn after the one labelled `label` (its partner line has no label)."""
    lines = axis.get_lines()
    first = [line.get_label() for line in lines].index(label)
    return [float(lines[first + k].get_xdata()[0]) for k in (0, 1)]


def truth_span(axis):
    (patch,) = [patch for patch in axis.patches if patch.get_label() == "ground truth"]
    return [patch.get_x(), patch.get_x() + patch.get_width()]


def bar_heights(container):
    return np.array([bar.get_height() for bar in container])


def bar_edges(container):
    return np.array([bar.get_x() for bar in container] + [container[-1].get_x() + container[-1].get_width()])


def test_vslnet_query_figures_plot_the_models_probabilities_similarity_and_the_evaluated_spans(
    vslnet_workdir, synthetic_data_dir
):
    index = 2
    directory, drawn = figures.write_figures(vslnet_workdir, data_dir=synthetic_data_dir, query_indices=(index,))
    assert directory == os.path.join(vslnet_workdir, "eval", "test", "plots")
    assert sorted(drawn) == [
        "iou_histogram.png",
        "length_error_histogram.png",
        "miou_by_video_length.png",
        f"query_{index}_probabilities.png",
        f"query_{index}_similarity.png",
    ]
    for name in drawn:
        assert_png(os.path.join(directory, name))
    config, row, outputs = forward_pass(vslnet_workdir, synthetic_data_dir, index)
    n, duration = int(row["video_length"]), float(row["duration"])
    lines, truth, top1 = prediction_lines(vslnet_workdir)
    assert lines[index]["query"] == row["query"].decode()

    upper, lower = drawn[f"query_{index}_probabilities.png"].axes
    curves = lines_by_label(upper)
    np.testing.assert_allclose(curves["P(start)"].get_xdata(), (np.arange(n) + 0.5) * duration / n, rtol=1e-6)
    np.testing.assert_allclose(curves["P(start)"].get_ydata(), softmax(outputs["start_logits"][:n]), atol=1e-6)
    np.testing.assert_allclose(curves["P(end)"].get_ydata(), softmax(outputs["end_logits"][:n]), atol=1e-6)
    np.testing.assert_allclose(
        lines_by_label(lower)["highlight score"].get_ydata(), sigmoid(outputs["highlight_logits"][:n]), atol=1e-6
    )
    for axis in (upper, lower):
        np.testing.assert_allclose(boundaries(axis), top1[index], atol=1e-5)
        np.testing.assert_allclose(truth_span(axis), truth[index], atol=1e-5)
        assert axis.get_xlim() == (0.0, pytest.approx(duration))
    assert lower.get_xlabel() == "time (s)" and upper.get_ylabel() == "probability"

    (heat_map, colorbar) = drawn[f"query_{index}_similarity.png"].axes
    tokens = text.tokenize_to_lists([row["query"].decode()])[0][: config.data.max_query_len]
    assert [label.get_text() for label in heat_map.get_yticklabels()] == tokens
    assert len(tokens) == np.count_nonzero(row["word_ids"])
    np.testing.assert_allclose(
        heat_map.get_images()[0].get_array(), outputs["similarity"][:n, : len(tokens)].T, atol=1e-5
    )
    np.testing.assert_allclose(boundaries(heat_map), top1[index], atol=1e-5)
    np.testing.assert_allclose(boundaries(heat_map, "ground truth"), truth[index], atol=1e-5)
    assert colorbar.get_ylabel() == "similarity score S"


def test_vslnet_split_figures_count_the_predictions_ious_and_length_errors_and_show_the_bucket_miou(vslnet_workdir):
    directory, drawn = figures.write_figures(vslnet_workdir, query_indices=())
    assert sorted(drawn) == ["iou_histogram.png", "length_error_histogram.png", "miou_by_video_length.png"]
    _, truth, top1 = prediction_lines(vslnet_workdir)

    (axis,) = drawn["iou_histogram.png"].axes
    (container,) = axis.containers
    ious = metrics.temporal_iou(top1, truth)
    expected, edges = np.histogram(ious, bins=10, range=(0.0, 1.0))
    np.testing.assert_allclose(bar_edges(container), edges, atol=1e-12)
    np.testing.assert_array_equal(bar_heights(container), expected)
    assert bar_heights(container).sum() == len(truth) and container[0].get_label() == "VSLNet"
    assert axis.get_ylabel() == "queries" and "IoU" in axis.get_xlabel() and axis.get_title()

    (axis,) = drawn["length_error_histogram.png"].axes
    (container,) = axis.containers
    errors = np.diff(top1, axis=1)[:, 0] - np.diff(truth, axis=1)[:, 0]
    edges = bar_edges(container)
    assert edges[0] == pytest.approx(-edges[-1]) and edges[0] < 0  # symmetric around 0
    assert edges[-1] <= np.abs(errors).max() and np.mean(np.abs(errors) <= edges[-1] + 1e-9) >= 0.97  # ~2% clipped
    expected, _ = np.histogram(np.clip(errors, edges[0], edges[-1]), bins=edges)
    np.testing.assert_array_equal(bar_heights(container), expected)
    assert "(s)" in axis.get_xlabel()

    (axis,) = drawn["miou_by_video_length.png"].axes
    (container,) = axis.containers
    filled = [bucket for bucket in length_buckets(vslnet_workdir) if bucket["queries"]]
    np.testing.assert_allclose(bar_heights(container), [bucket["metrics"]["mIoU"] for bucket in filled], atol=1e-9)
    assert [label.get_text() for label in axis.get_xticklabels()] == [
        f"{bucket['bin']}\n{bucket['queries']} queries" for bucket in filled
    ]
    assert axis.get_ylabel() == "mIoU (%)"
    for name in drawn:
        assert_png(os.path.join(directory, name))


def test_vslnet_l_figures_plot_each_scales_clip_scores_and_the_gain_over_vslnet_per_video_length(
    vslnet_l_workdir, vslnet_workdir, synthetic_data_dir
):
    index = 1
    directory, drawn = figures.write_figures(vslnet_l_workdir, query_indices=(index,), compare_workdir=vslnet_workdir)
    assert sorted(drawn) == [
        "iou_histogram.png",
        "length_error_histogram.png",
        "miou_by_video_length.png",
        "miou_gain_by_video_length.png",
        f"query_{index}_clip_scores.png",
        f"query_{index}_probabilities.png",
    ]  # VSLNet-L returns no similarity matrix
    for name in drawn:
        assert_png(os.path.join(directory, name))
    config, row, outputs = forward_pass(vslnet_l_workdir, synthetic_data_dir, index)
    n, duration = int(row["video_length"]), float(row["duration"])
    _, truth, top1 = prediction_lines(vslnet_l_workdir, config.eval.selection)

    panels = drawn[f"query_{index}_clip_scores.png"].axes
    clip_lengths = TINY_VSLNET_L["model"]["clip_lengths"]
    assert len(panels) == len(clip_lengths)
    for scale, (axis, clip_length) in enumerate(zip(panels, clip_lengths)):
        (stairs,) = [patch for patch in axis.patches if patch.get_label() == "clip score"]
        num_clips = -(-n // clip_length)  # clips holding at least one of the n valid positions
        assert outputs["clip_mask"][scale].sum() == num_clips
        np.testing.assert_allclose(
            stairs.get_data().values, sigmoid(outputs["nil_logits"][scale, :num_clips]), atol=1e-6
        )
        np.testing.assert_allclose(
            stairs.get_data().edges, np.minimum(np.arange(num_clips + 1) * clip_length, n) * duration / n, rtol=1e-6
        )
        np.testing.assert_allclose(truth_span(axis), truth[index], atol=1e-5)
        np.testing.assert_allclose(boundaries(axis), top1[index], atol=1e-5)
        assert axis.get_ylabel().startswith(f"l = {clip_length}")

    start, end = softmax(outputs["start_logits"][:, :n]), softmax(outputs["end_logits"][:, :n])
    best = [np.triu(np.outer(s, e)).max() for s, e in zip(start, end)]  # Pm: the scale of the likeliest span
    scale = int(np.argmax(best))
    upper, lower = drawn[f"query_{index}_probabilities.png"].axes
    np.testing.assert_allclose(lines_by_label(upper)["P(start)"].get_ydata(), start[scale], atol=1e-6)
    np.testing.assert_allclose(lines_by_label(upper)["P(end)"].get_ydata(), end[scale], atol=1e-6)
    np.testing.assert_allclose(
        lines_by_label(lower)["highlight score"].get_ydata(), sigmoid(outputs["highlight_logits"][scale, :n]), atol=1e-6
    )
    assert f"l = {clip_lengths[scale]}" in drawn[f"query_{index}_probabilities.png"].get_suptitle()

    vslnet_miou = {b["bin"]: b["metrics"]["mIoU"] for b in length_buckets(vslnet_workdir) if b["queries"]}
    l_buckets = length_buckets(vslnet_l_workdir)
    (axis,) = drawn["miou_by_video_length.png"].axes
    assert [container.get_label() for container in axis.containers] == ["VSLNet-L-Pm", "VSLNet-L-U", "VSLNet"]
    (axis,) = drawn["miou_gain_by_video_length.png"].axes
    assert [container.get_label() for container in axis.containers] == ["VSLNet-L-Pm", "VSLNet-L-U"]
    for container, selection in zip(axis.containers, ("pm", "u")):
        expected = [b["metrics"]["mIoU"] - vslnet_miou[b["bin"]] for b in l_buckets[selection] if b["queries"]]
        np.testing.assert_allclose(bar_heights(container), expected, atol=1e-9)
    assert axis.get_ylabel() == "mIoU gain over VSLNet (points)"
    (axis,) = drawn["iou_histogram.png"].axes
    l_ious = metrics.temporal_iou(top1, truth)
    np.testing.assert_array_equal(bar_heights(axis.containers[0]), np.histogram(l_ious, bins=10, range=(0, 1))[0])


def test_evaluate_command_writes_the_figures_and_rejects_plot_flags_without_plots(
    vslnet_workdir, vslnet_l_workdir, synthetic_data_dir
):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    command = [
        sys.executable,
        str(REPO / "experiments" / "evaluate.py"),
        f"--workdir={vslnet_workdir}",
        f"--data_dir={synthetic_data_dir}",
    ]
    result = subprocess.run(command + ["--plot_queries=2"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode != 0 and "--plot_queries need --plots" in result.stderr
    plots_dir = pathlib.Path(vslnet_workdir) / "eval" / "test" / "plots"
    shutil.rmtree(plots_dir, ignore_errors=True)
    result = subprocess.run(
        command + ["--plots", "--plot_indices=3,0", f"--compare_workdir={vslnet_l_workdir}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = {
        "iou_histogram.png",
        "length_error_histogram.png",
        "miou_by_video_length.png",
        "miou_gain_by_video_length.png",
        "query_0_probabilities.png",
        "query_0_similarity.png",
        "query_3_probabilities.png",
        "query_3_similarity.png",
    }
    assert {path.name for path in plots_dir.iterdir()} == expected
    assert f"8 figures in {plots_dir}" in result.stdout
    for name in expected:
        assert_png(plots_dir / name)


def test_query_indices_outside_the_split_and_unevaluated_workdirs_are_clear_errors(vslnet_workdir, tmp_path):
    with pytest.raises(ValueError, match=r"query indices \[100000\] are outside the split's \d+ records"):
        figures.write_figures(vslnet_workdir, query_indices=(0, 100000))
    shutil.copy(os.path.join(vslnet_workdir, workdir_lib.CONFIG_FILE), tmp_path / workdir_lib.CONFIG_FILE)
    with pytest.raises(FileNotFoundError, match="predictions.jsonl not found: evaluate the workdir"):
        figures.write_figures(vslnet_workdir, query_indices=(), compare_workdir=str(tmp_path))


def test_plot_functions_refuse_mismatched_inputs_and_draw_vslbase_without_a_highlight_panel(tmp_path):
    times = np.array([0.5, 1.5, 2.5])
    probs = np.array([0.2, 0.5, 0.3])
    figure = plots.plot_query_probabilities(
        tmp_path / "a.png", times, probs, probs[::-1], None, (0.0, 2.0), (1.0, 3.0), 3.0, "a query"
    )
    assert len(figure.axes) == 1 and set(lines_by_label(figure.axes[0])) >= {"P(start)", "P(end)"}
    assert_png(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"end_probs must be \[3\], got shape \(2,\)"):
        plots.plot_query_probabilities(tmp_path / "b.png", times, probs, probs[:2], None, (0, 1), (0, 1), 3.0, "q")
    with pytest.raises(ValueError, match=r"prediction must be finite \(start, end\) seconds, got \[0.0, 1.0, 2.0\]"):
        plots.plot_query_probabilities(tmp_path / "b.png", times, probs, probs, None, (0, 1), (0, 1, 2), 3.0, "q")
    with pytest.raises(ValueError, match=r"similarity must be \[N=3, tokens=2\]"):
        plots.plot_similarity(tmp_path / "c.png", times, ["a", "b"], np.zeros((3, 3)), (0, 1), (0, 1), 3.0, "q")
    with pytest.raises(ValueError, match="clip_scores and clip_edges need the same non-empty scales"):
        plots.plot_clip_scores(tmp_path / "d.png", {4: [0, 1]}, {5: [0.5]}, (0, 1), (0, 1), 3.0, "q")
    with pytest.raises(ValueError, match="plot_length_error_histogram needs at least one series"):
        plots.plot_length_error_histogram(tmp_path / "e.png", {})
    assert not (tmp_path / "b.png").exists()


def test_split_figures_refuse_predictions_of_different_splits(tmp_path):
    def predictions(durations):
        truth = np.array([[0.0, 1.0]] * len(durations))
        ranked = np.repeat(truth[:, None], 5, axis=1)
        return figures.SplitPredictions(np.array(durations), np.arange(len(durations)), truth, {"pm": ranked})

    # One query in the first video-length bin (0-2 min) against one in the last (over 12 min).
    series = {"A": (predictions([30.0]), "pm"), "B": (predictions([1000.0]), "pm")}
    with pytest.raises(ValueError, match=r"B has \[0, 0, 0, 0, 0, 0, 1\] queries per video-length bin, A \[1, 0,"):
        figures.split_figures(tmp_path, series)
