"""The folder extraction as an Apache Beam pipeline: the same files as `extraction.extract_videos`, on any runner.

Each worker loads the extractor once (`DoFn.setup`) and extracts whole videos with the same code and the same
`batch` as the single-process command, so the .npy files are byte-identical. Videos already done (manifest line and
.npy) are left out before the pipeline starts; an unreadable video becomes a failure record, not a failed pipeline.
The manifest is rewritten once at the end. Output goes through tf.io.gfile, so `--output_dir` may be a GCS path on
Dataflow; videos and weights must be readable where the workers run (a shared or mounted filesystem).
"""

import apache_beam as beam
import tensorflow as tf
from apache_beam.options import pipeline_options

from nlvl_tf.video import decoding, extraction, presets

FAILED = "failed"


class ExtractVideo(beam.DoFn):
    """(video_id, path) -> its manifest record; a video that cannot be read -> (video_id, error) on FAILED."""

    def __init__(self, weights_path, preset_name, output_dir, batch, run_info):
        self._weights_path = weights_path
        self._preset_name = preset_name
        self._output_dir = output_dir
        self._batch = batch
        self._run_info = run_info
        self._extractor = None

    def setup(self):
        self._extractor = extraction.load_extractor(self._weights_path, self._preset_name)

    def process(self, element):
        video_id, path = element
        try:
            yield extraction.extract_one(self._extractor, video_id, path, self._output_dir, self._batch, self._run_info)
        except decoding.VideoReadError as error:
            yield beam.pvalue.TaggedOutput(FAILED, (video_id, str(error)))


def run(videos, output_dir, weights_path, preset, batch=8, runner="DirectRunner", options=()):
    """Runs the pipeline; returns an extraction.Summary. `options` are more Beam pipeline options
    (["--project=p", "--region=r", ...])."""
    preset = presets.get(preset)
    found = extraction.list_videos(videos)
    info = extraction.run_info(preset, weights_path)
    tf.io.gfile.makedirs(f"{output_dir}/{extraction.FEATURES_DIR}")
    kept, todo = extraction.pending_videos(found, output_dir, info)
    failed = {}
    if todo:
        beam_options = pipeline_options.PipelineOptions([f"--runner={runner}", *options])
        with beam.Pipeline(options=beam_options) as pipeline:
            results = (
                pipeline
                | "Videos" >> beam.Create(sorted(todo.items()))
                | "Extract"
                >> beam.ParDo(ExtractVideo(weights_path, preset.name, output_dir, batch, info)).with_outputs(
                    FAILED, main="records"
                )
            )
            all_records = results.records | "Records" >> beam.combiners.ToList()
            all_failed = results[FAILED] | "Failures" >> beam.combiners.ToList()
            _ = (
                pipeline
                | "Finish" >> beam.Create([None])
                | "Manifest"
                >> beam.Map(
                    _finish,
                    records=beam.pvalue.AsSingleton(all_records),
                    failures=beam.pvalue.AsSingleton(all_failed),
                    output_dir=output_dir,
                    kept=kept,
                )
            )
        failed = extraction.read_failures(output_dir)
    else:
        extraction.write_manifest(output_dir, kept)
        extraction.write_failures(output_dir, {})
    return extraction.Summary(extracted=len(todo) - len(failed), skipped=len(found) - len(todo), failed=failed)


def _finish(_, records, failures, output_dir, kept):
    """Writes the manifest (the records kept + the new ones) and the failure list, once, on one worker."""
    extraction.write_manifest(output_dir, {**kept, **{record["video_id"]: record for record in records}})
    extraction.write_failures(output_dir, dict(failures))
