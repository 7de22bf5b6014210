"""Training and evaluation of one run: `prepare` builds what the loop needs, `Trainer` runs the loop.

Resume is exact: the step counter is checkpointed, the epoch and the position inside it follow from it, every epoch's
batch order is a pure function of (seed, epoch), and dropout RNG states are saved with the model, so a run killed at
any point and restarted with the same command continues as if it had never stopped (bit-identical on CPU with
`config.train.deterministic`).
"""

import dataclasses
import os
import shutil
import sys
import time

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from nlvl_tf import configs, errors, runtime
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, text
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import evaluation
from nlvl_tf.model import vslnet
from nlvl_tf.train import cadence, keeper, optimizer, step

TRAIN_KEYS = evaluation.MODEL_INPUT_KEYS + ("start_index", "end_index", "highlight")
SUBMISSION_FILE = "submission.json"


@dataclasses.dataclass
class Run:
    """What the loop needs, made by `prepare`."""

    config: ml_collections.ConfigDict  # resolved: feature dimension and positional table filled in
    workdir: str
    output_dir: str  # the workdir for the chief, a scratch folder for other multi_worker workers
    chief: bool
    strategy: tf.distribute.Strategy
    jit_compile: bool
    splits: dict  # split name -> input_pipeline.SplitData
    selection_split: str
    encoder: text.QueryEncoder
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    steps_per_epoch: int

    @property
    def total_steps(self):
        return self.steps_per_epoch * self.config.train.epochs


def selection_split(config, available):
    """The split that picks the best checkpoint: config.train.selection_split, else validation, else eval.split."""
    chosen = config.train.selection_split or ("validation" if "validation" in available else config.eval.split)
    if chosen == config.eval.split:
        logging.warning(
            "selecting the best checkpoint on the %r split, which is also the reported split: this reproduces the "
            "authors' protocol (best-on-test), not a clean held-out selection",
            chosen,
        )
    return chosen


def prepare(config, workdir):
    """Reads the data, resolves the config, loads or builds the vocabulary, and builds model and optimizer.

    Nothing is written to `workdir` before the data has been read, so a run that cannot start leaves no trace.
    """
    runtime.configure(config)
    strategy = runtime.make_strategy(config.train)
    chosen = selection_split(config, splits_lib.available_splits(config.data))
    needed = [config.data.train_split, chosen, config.eval.split, config.eval.submission_split]
    splits = splits_lib.load_splits(config.data, list(dict.fromkeys(split for split in needed if split)))
    if not splits[chosen].annotated.any():
        raise errors.InputError(f"the selection split {chosen!r} has no ground truth: set config.train.selection_split")
    configs.resolve(config, splits[config.data.train_split].feature_dim)
    steps_per_epoch = input_pipeline.num_train_batches(
        splits[config.data.train_split], config.data, config.train.batch_size
    )
    if steps_per_epoch == 0:
        raise errors.InputError(
            f"the training split {config.data.train_split!r} has fewer usable records than one batch of "
            f"{config.train.batch_size}"
        )
    chief = runtime.is_chief(strategy)
    output_dir = workdir if chief else runtime.worker_scratch_dir(workdir, strategy)
    vocabulary_dir = os.path.join(output_dir, workdir_lib.VOCABULARY_DIR)
    vocabulary = load_or_build_vocabulary(vocabulary_dir, splits, config)
    with strategy.scope():
        model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
        train_optimizer = optimizer.make_optimizer(config.train, steps_per_epoch * config.train.epochs)
        train_optimizer.build(model.trainable_variables)
    return Run(
        config=config,
        workdir=workdir,
        output_dir=output_dir,
        chief=chief,
        strategy=strategy,
        jit_compile=runtime.use_xla(config.train),
        splits=splits,
        selection_split=chosen,
        encoder=text.QueryEncoder.from_config(vocabulary_dir, config.data),
        model=model,
        optimizer=train_optimizer,
        steps_per_epoch=steps_per_epoch,
    )


def load_or_build_vocabulary(directory, splits, config):
    """The run's saved vocabulary, or one built from the dataset's queries (and word vectors), written whole: aside
    and renamed, so a run killed while writing leaves no half vocabulary to resume with."""
    if os.path.exists(os.path.join(directory, text.WORDS_FILE)):
        return text.Vocabulary.load(directory)
    train_first = {config.data.train_split: splits[config.data.train_split], **splits}
    vocabulary = input_pipeline.build_vocabulary(train_first, config)
    partial = f"{directory}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    vocabulary.save(partial)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)
    return vocabulary


class Trainer:
    """The loop over a prepared `Run`: steps, periodic evaluation and selection, checkpoints, TensorBoard, progress."""

    def __init__(self, run):
        self.run = run
        self.config = run.config
        # The loop's own counter (not optimizer.iterations, which a float16 step skipped for overflow leaves behind).
        self.step = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        with run.strategy.scope():
            self.keeper = keeper.BestCheckpointKeeper(
                run.model, run.output_dir, self.step, self.config.train.patience, run.chief
            )
        self.checkpoints = tf.train.CheckpointManager(
            tf.train.Checkpoint(
                model=run.model,
                optimizer=run.optimizer,
                step=self.step,
                rng_states=_rng_states(run.model),
                **self.keeper.state,
            ),
            os.path.join(run.output_dir, workdir_lib.CHECKPOINTS_DIR),
            max_to_keep=self.config.train.max_checkpoints,
            step_counter=self.step,
        )
        self.predict = evaluation.make_predict_fn(run.model, self.config)
        self.train_step = step.make_train_step(
            run.model, run.optimizer, run.strategy, self.config.train.clip_norm, run.jit_compile
        )
        self.writer = tf.summary.create_file_writer(os.path.join(run.output_dir, "tensorboard"))

    def train(self):
        """Trains to the configured number of epochs (or early stop), resuming from the last whole checkpoint."""
        run, config = self.run, self.config
        self._save_config()
        self._restore()
        positions = cadence.evaluation_positions(run.steps_per_epoch, config.train.evals_per_epoch)
        logging.info(
            "training %s: %d steps (%d per epoch, %d epochs), XLA %s, %d replica(s)",
            config.model.name,
            run.total_steps,
            run.steps_per_epoch,
            config.train.epochs,
            run.jit_compile,
            run.strategy.num_replicas_in_sync,
        )
        while int(self.step.numpy()) < run.total_steps and not self.keeper.exhausted:
            epoch, position = divmod(int(self.step.numpy()), run.steps_per_epoch)
            progress = _progress_bar(run.steps_per_epoch, run.chief, position)
            started, first_step = time.perf_counter(), int(self.step.numpy())
            for batch in self._distributed_batches(epoch, position):
                terms = self.train_step(batch)
                current = int(self.step.assign_add(1).numpy())
                rate = (current - first_step) * config.train.batch_size / (time.perf_counter() - started)
                progress.update(
                    current - epoch * run.steps_per_epoch, [("loss", float(terms["loss"])), ("examples/s", rate)]
                )
                if cadence.is_time(current, config.train.log_every_steps, run.total_steps):
                    self._log_scalars(current, terms, rate)
                if cadence.is_evaluation_step(current, run.steps_per_epoch, positions):
                    self._evaluate_and_select(current)
                    if self.keeper.exhausted:
                        logging.info("early stop: %d evaluations without improvement", config.train.patience)
                        break
        self.writer.flush()
        return int(self.step.numpy())

    def _save_config(self):
        if self.run.chief:
            workdir_lib.write_atomically(
                os.path.join(self.run.workdir, workdir_lib.CONFIG_FILE),
                self.config.to_json_best_effort(indent=2, sort_keys=True),
            )
        logging.debug("config:\n%s", self.config)

    def _restore(self):
        """Restores the newest checkpoint that reads back whole; a partial or corrupt one is skipped with a warning
        (the steps after the one restored are trained again, to the same values)."""
        for directory in (self.checkpoints.directory, self.keeper.manager.directory):
            workdir_lib.discard_partial_checkpoints(directory)
        found = workdir_lib.checkpoints_newest_first(self.checkpoints.directory)
        for path in found:
            try:
                workdir_lib.restore(self.checkpoints.checkpoint, path)
            except workdir_lib.UnreadableCheckpointError as error:
                logging.warning("%s; trying the one before", error)
                continue
            logging.info("resumed from %s at step %d", path, int(self.step.numpy()))
            return
        if found:
            raise errors.InputError(
                f"no checkpoint in {self.checkpoints.directory} reads back whole ({', '.join(found)} are partial or "
                f"corrupt): remove them to train from the start"
            )

    def _distributed_batches(self, epoch, position):
        config = self.config
        dataset = input_pipeline.train_batches(
            self.run.splits[config.data.train_split],
            self.run.encoder,
            config.data,
            config.train.batch_size,
            config.seed,
            epoch,
        )
        dataset = dataset.skip(position).map(lambda batch: {key: batch[key] for key in TRAIN_KEYS})
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.run.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def evaluate(self, split):
        """(records, predictions, {selection: metrics}) of a split with the model's current weights."""
        return evaluation.evaluate_split(self.predict, self.run.splits[split], self.run.encoder, self.config)

    def _evaluate_and_select(self, current):
        """Evaluates the selection split, lets the keeper keep the best checkpoint, reports, saves the latest."""
        split = self.run.selection_split
        _, _, results = self.evaluate(split)
        chosen = evaluation.selected_metrics(results, self.config)
        record = {"step": current, "split": split, "metrics": evaluation.flatten_single(results)}
        improved = self.keeper.update(chosen[self.config.train.selection_metric], current, record)
        with self.writer.as_default(step=current):
            for selection, values in results.items():
                for key, metric in values.items():
                    tf.summary.scalar(f"{split}/{selection}/{key}", metric)
        logging.info("step %d %s %s%s", current, split, format_metrics(chosen), " (best)" if improved else "")
        self.checkpoints.save(checkpoint_number=current)

    def _log_scalars(self, current, terms, rate):
        with self.writer.as_default(step=current):
            for key, value in terms.items():
                tf.summary.scalar(f"train/{key}", value)
            tf.summary.scalar("train/learning_rate", self.run.optimizer.learning_rate)
            tf.summary.scalar("train/examples_per_second", rate)

    def final_evaluation(self):
        """Restores the best checkpoint and writes the reported split's results to workdir/eval/<split>/ (with the
        Ego4D evaluator's numbers if config.eval.ego4d_metric), then, with config.eval.submission_split, that split's
        predictions and Ego4D challenge file (workdir/eval/<split>/submission.json). Returns the reported results."""
        self.keeper.restore_best()
        eval_config = self.config.eval
        reported = self._evaluate_into(eval_config.split, eval_config.ego4d_metric, submission=False)
        if eval_config.submission_split:
            self._evaluate_into(eval_config.submission_split, eval_config.ego4d_metric, submission=True)
        return reported

    def _evaluate_into(self, split, ego4d_metric, submission):
        directory = os.path.join(self.run.workdir, workdir_lib.EVAL_DIR, split)
        if not self.run.chief:  # the chief writes; the others only take part in the computation
            return self.evaluate(split)[2]
        path = os.path.join(directory, SUBMISSION_FILE) if submission else None
        args = (self.predict, self.run.splits[split], self.run.encoder, self.config, split, directory)
        return evaluation.evaluate_and_write(*args, ego4d_metric=ego4d_metric, submission=path).results

    def cleanup(self):
        if not self.run.chief:
            shutil.rmtree(self.run.output_dir, ignore_errors=True)


def _rng_states(model):
    """Dropout RNG states: Keras variables that tf.train.Checkpoint does not reach through the model. Saving them makes
    a resumed run draw the same dropout masks as an uninterrupted one."""
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def _progress_bar(steps_per_epoch, chief, position):
    progress = keras.utils.Progbar(
        steps_per_epoch,
        stateful_metrics=["loss", "examples/s"],
        verbose=(1 if sys.stdout.isatty() else 2) if chief else 0,
    )
    progress.update(position)
    return progress


def format_metrics(values):
    return " ".join(f"{key} {value:.2f}" for key, value in values.items())


def train_and_evaluate(config, workdir):
    """Trains (or resumes) in `workdir`, then evaluates the best checkpoint on config.eval.split.

    Returns:
        The reported split's metrics: {selection: {metric: percent}}.
    """
    with runtime.reporting_lost_workers(config.train, workdir):
        trainer = Trainer(prepare(config, workdir))
        trainer.train()
        results = trainer.final_evaluation()
        trainer.cleanup()
    for selection, values in results.items():
        logging.info("%s [%s] %s", config.eval.split, selection, format_metrics(values))
    return results
