"""The end-to-end demo on the embedded synthetic dataset: build, train, evaluate against trivial baselines, draw the
figures."""

import os

import tensorflow_datasets as tfds
from absl import logging

from nlvl_tf.data import input_pipeline
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import baselines, evaluation, figures
from nlvl_tf.serve import export, localizer
from nlvl_tf.train import trainer

METRIC_KEYS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


def build_synthetic(builders_dir, data_dir, config_name="small"):
    """Builds `nlvl_synthetic/<config_name>` from its builder folder into `data_dir` (a no-op when already built)."""
    with tfds.core.utils.add_sys_path(builders_dir):
        builder_class = tfds.core.community.builder_cls_from_module("nlvl_synthetic.nlvl_synthetic_dataset_builder")
        builder = builder_class(config=config_name, data_dir=data_dir)
        builder.download_and_prepare()
    return builder


def results_table(model_metrics, baseline_metrics):
    """The demo's printed table: the model's top-1 metrics next to each baseline's, in percent."""
    rows = {
        "VSLNet (this run)": model_metrics,
        **{f"baseline: {name}": values for name, values in baseline_metrics.items()},
    }
    width = max(len(name) for name in rows) + 2
    lines = ["".ljust(width) + "".join(key.rjust(9) for key in METRIC_KEYS)]
    for name, values in rows.items():
        lines.append(name.ljust(width) + "".join(f"{values[key]:9.2f}" for key in METRIC_KEYS))
    return "\n".join(lines)


def answer_one_query(export_dir, config):
    """Loads the export and localizes the first test video's first query; returns a printable report."""
    video = next(iter(splits_lib.dataset_builder(config.data).as_dataset(split=config.eval.split).take(1)))
    annotation = {key: value[0].numpy() for key, value in video["annotations"].items()}
    query = annotation["query"].decode("utf-8")
    duration = float(video["duration"])
    moments = localizer.Localizer.load(export_dir).predict(video["features"].numpy(), duration, query, top_k=3)
    lines = [
        f'Query "{query}" on video {video["video_id"].numpy().decode()} ({duration:.1f} s), answered by '
        f"the SavedModel in {export_dir}:",
        f"  ground truth  {annotation['start']:6.2f} - {annotation['end']:6.2f} s",
    ]
    lines += [
        f"  prediction {rank}  {m['start']:6.2f} - {m['end']:6.2f} s  (score {m['score']:.3f})"
        for rank, m in enumerate(moments, 1)
    ]
    return "\n".join(lines)


def run(config, workdir, builders_dir):
    """Builds the data, trains (resuming if `workdir` holds a run), evaluates, exports, answers one query through the
    export and draws the figures of the evaluation split (workdir/eval/<split>/plots/); returns the report to print."""
    data = config.data
    data.data_dir = data.data_dir or os.path.join(workdir, "tensorflow_datasets")
    logging.info("building nlvl_synthetic/%s into %s", data.dataset_config, data.data_dir)
    build_synthetic(builders_dir, data.data_dir, data.dataset_config)
    results = trainer.train_and_evaluate(config, workdir)
    splits = splits_lib.load_splits(data, [data.train_split, config.eval.split])
    found = baselines.evaluate_baselines(
        input_pipeline.eval_records(splits[data.train_split], data),
        input_pipeline.eval_records(splits[config.eval.split], data),
        seed=config.seed,
        iou_rule=config.eval.iou_rule,
    )
    export_dir = os.path.join(workdir, "export")
    export.export(workdir, export_dir)
    plots_dir, drawn = figures.write_figures(workdir, config.eval.split, data_dir=data.data_dir)
    model_metrics = evaluation.selected_metrics(results, config)
    return (
        f"Test split of {data.dataset}/{data.dataset_config} (percent):\n{results_table(model_metrics, found)}"
        f"\n\n{answer_one_query(export_dir, config)}\n\nFigures in {plots_dir}: {', '.join(sorted(drawn))}"
    )
