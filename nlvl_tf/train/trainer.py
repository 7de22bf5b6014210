"""The training loop (reference_spec.md section 5): tf.distribute, XLA, checkpoints with exact resume, selection of
the best checkpoint, early stopping, TensorBoard and progress output.

Resume is exact: the step counter is the optimizer's, the epoch and the position inside it follow from it, every
epoch's batch order is a pure function of (seed, epoch), and dropout RNG states are model variables, so a run killed
at any point and restarted with the same command continues as if it had never stopped (bit-identical on CPU with
`config.deterministic`).
"""

import json
import os
import shutil
import sys
import time

import keras
import tensorflow as tf
from absl import logging

from nlvl_tf import runtime
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import input_pipeline, text
from nlvl_tf.data import splits as splits_lib
from nlvl_tf.eval import evaluation
from nlvl_tf.model import losses, vslnet

TRAIN_KEYS = evaluation.MODEL_INPUT_KEYS + ("start_index", "end_index", "highlight")
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")  # LayerNorm scale/offset and biases, as the authors' AdamW


@keras.saving.register_keras_serializable(package="nlvl_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The authors' schedule: linear decay from `peak` to 0 over `total_steps`, overridden by a linear warmup
    `peak * step / warmup_steps` during the first `warmup_steps` (spec 5)."""

    def __init__(self, peak, total_steps, warmup_steps=0):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self.peak * tf.maximum(0.0, 1.0 - step / max(self.total_steps, 1))
        if not self.warmup_steps:
            return decayed
        return tf.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def make_optimizer(config, total_steps):
    """AdamW (weight decay off for LayerNorm and biases, epsilon 1e-6) on the warmup + linear decay schedule.

    Global-norm clipping is not given to Keras: under a multi-replica strategy it would clip each replica's partial
    gradient before summing them; `replica_gradients` clips the summed gradient instead.
    """
    schedule = WarmupLinearDecay(config.learning_rate, total_steps, int(config.warmup_proportion * total_steps))
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=config.weight_decay, epsilon=config.adam_epsilon
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def replica_gradients(model, batch, clip_norm, optimizer=None):
    """One replica's share of the global-batch loss and the global, clipped gradient, divided among replicas.

    Runs in a replica context (inside `strategy.run`, or directly for one device). Loss denominators are summed over
    replicas, the gradients are summed and clipped by their global norm, then each replica gets 1 / replicas of the
    result so the optimizer's own cross-replica sum restores it.

    Returns:
        (terms: dict of float32 scalars, this replica's share; gradients: list aligned with trainable_variables).
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync

    def sum_over_replicas(value):
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value) if replicas > 1 else value

    with tf.GradientTape() as tape:
        outputs = model(batch, training=True)
        terms = losses.combine(model.loss_components(batch, outputs), sum_over_replicas)
        loss = terms["loss"]
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
    gradients = tape.gradient(loss, model.trainable_variables)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        scale = tf.cast(optimizer.dynamic_scale, tf.float32)
        gradients = [g / scale for g in gradients]
    gradients = [tf.convert_to_tensor(g) for g in gradients]
    gradients = sum_over_replicas(gradients)
    if clip_norm:
        gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
    if replicas > 1:
        gradients = [g / replicas for g in gradients]
    return terms, gradients


def make_train_step(model, optimizer, strategy, config, jit_compile):
    """The traced step: distributed batch -> summed loss terms; applies one optimizer update."""

    def replica_step(batch):
        terms, gradients = replica_gradients(model, batch, config.clip_norm)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return terms

    @tf.function(jit_compile=jit_compile)
    def train_step(batch):
        terms = strategy.run(replica_step, args=(batch,))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for key, value in terms.items()}

    return train_step


class Trainer:
    """Everything one training run holds: data, model, optimizer, checkpoints, logs. See `train_and_evaluate`."""

    def __init__(self, config, workdir):
        self.config = config
        self.workdir = workdir
        runtime.configure(config)
        self.strategy = runtime.make_strategy(config)
        self.chief = runtime.is_chief(self.strategy)
        self.output_dir = (
            workdir
            if self.chief
            else os.path.join(
                workdir,
                "workers",
                f"{self.strategy.cluster_resolver.task_type}_{self.strategy.cluster_resolver.task_id}",
            )
        )
        os.makedirs(self.output_dir, exist_ok=True)
        self.jit_compile = runtime.use_xla(config)
        self.splits = splits_lib.load_splits(config, self._needed_splits())
        self.vocabulary_dir = os.path.join(self.output_dir, workdir_lib.VOCABULARY_DIR)
        vocabulary = self._vocabulary()
        self.encoder = text.QueryEncoder(self.vocabulary_dir, config.max_query_len, config.max_word_len)
        train = self.splits[config.train_split]
        self.steps_per_epoch = input_pipeline.num_train_batches(train, config)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the training split {config.train_split!r} has fewer usable records than one batch "
                f"of {config.batch_size}"
            )
        self.total_steps = self.steps_per_epoch * config.epochs
        with self.strategy.scope():
            self.model = vslnet.build_model(config, len(vocabulary.words), vocabulary.num_chars, vocabulary.vectors)
            self.optimizer = make_optimizer(config, self.total_steps)
            self.optimizer.build(self.model.trainable_variables)
            self.best_value = tf.Variable(-1.0, trainable=False, name="best_value")
            self.evals_without_improvement = tf.Variable(0, trainable=False, name="evals_without_improvement")
        # Dropout RNG states are Keras variables that tf.train.Checkpoint does not reach through the model; saving
        # them is what makes a resumed run draw the same dropout masks as an uninterrupted one.
        rng_states = [v for v in self.model.non_trainable_variables if "seed_generator_state" in v.path]
        self.checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            best_value=self.best_value,
            evals_without_improvement=self.evals_without_improvement,
            rng_states=rng_states,
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint,
            os.path.join(self.output_dir, workdir_lib.CHECKPOINTS_DIR),
            max_to_keep=config.max_checkpoints,
            step_counter=self.optimizer.iterations,
        )
        self.best_checkpoint = tf.train.Checkpoint(model=self.model)
        self.best_manager = tf.train.CheckpointManager(
            self.best_checkpoint,
            os.path.join(self.output_dir, workdir_lib.BEST_DIR),
            max_to_keep=1,
            step_counter=self.optimizer.iterations,
        )
        self.predict = evaluation.make_predict_fn(self.model, config)
        self.train_step = make_train_step(self.model, self.optimizer, self.strategy, config, self.jit_compile)
        self.writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "tensorboard"))

    def _needed_splits(self):
        config = self.config
        self.selection_split = config.selection_split or (
            "validation" if "validation" in splits_lib.available_splits(config) else config.eval_split
        )
        if self.selection_split == config.eval_split:
            logging.warning(
                "selecting the best checkpoint on the %r split, which is also the reported split: this "
                "reproduces the authors' protocol (best-on-test), not a clean held-out selection",
                config.eval_split,
            )
        return list(dict.fromkeys([config.train_split, self.selection_split, config.eval_split]))

    def _vocabulary(self):
        """Loads the run's vocabulary, or builds it from the dataset's queries (and word vectors) and saves it."""
        if os.path.exists(os.path.join(self.vocabulary_dir, text.WORDS_FILE)):
            return text.Vocabulary.load(self.vocabulary_dir)
        splits = {self.config.train_split: self.splits[self.config.train_split], **self.splits}
        vocabulary = input_pipeline.build_vocabulary(splits, self.config, train_split=self.config.train_split)
        # Written aside and renamed, so a run killed while writing leaves no half vocabulary to resume with.
        partial = f"{self.vocabulary_dir}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        vocabulary.save(partial)
        shutil.rmtree(self.vocabulary_dir, ignore_errors=True)
        os.replace(partial, self.vocabulary_dir)
        return vocabulary

    def _restore(self):
        """Restores the newest checkpoint that reads back whole; a partial or corrupt one is skipped with a warning
        (the steps after the one restored are trained again, to the same values). None when there is none yet."""
        for directory in (self.manager.directory, self.best_manager.directory):
            workdir_lib.discard_partial_checkpoints(directory)
        found = workdir_lib.checkpoints_newest_first(self.manager.directory)
        for path in found:
            try:
                workdir_lib.restore(self.checkpoint, path)
            except workdir_lib.UnreadableCheckpointError as error:
                logging.warning("%s; trying the one before", error)
                continue
            logging.info("resumed from %s at step %d", path, int(self.optimizer.iterations.numpy()))
            return path
        if found:
            raise ValueError(
                f"no checkpoint in {self.manager.directory} reads back whole ({', '.join(found)} are "
                f"partial or corrupt): remove them to train from the start"
            )
        return None

    def _save_config(self):
        if self.chief:
            workdir_lib.write_atomically(
                os.path.join(self.workdir, workdir_lib.CONFIG_FILE),
                self.config.to_json_best_effort(indent=2, sort_keys=True),
            )
        logging.info("config:\n%s", self.config)

    def _distributed_batches(self, epoch, position):
        dataset = input_pipeline.train_batches(self.splits[self.config.train_split], self.encoder, self.config, epoch)
        dataset = dataset.skip(position).map(lambda batch: {key: batch[key] for key in TRAIN_KEYS})
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def evaluate(self, split):
        return evaluation.evaluate_split(self.predict, self.splits[split], self.encoder, self.config)

    def _evaluate_and_select(self, step):
        """Evaluates the selection split, keeps the best checkpoint, counts evaluations without improvement."""
        _, _, results = self.evaluate(self.selection_split)
        chosen = evaluation.selected_metrics(results, self.config)
        value = chosen[self.config.selection_metric]
        improved = value > float(self.best_value.numpy())
        if improved:
            self.best_value.assign(value)
            self.evals_without_improvement.assign(0)
            self.best_manager.save(checkpoint_number=step)
            if self.chief:
                workdir_lib.write_atomically(
                    os.path.join(self.workdir, workdir_lib.BEST_DIR, "metrics.json"),
                    json.dumps({"step": step, "split": self.selection_split, "metrics": results}, indent=2),
                )
        else:
            self.evals_without_improvement.assign_add(1)
        with self.writer.as_default(step=step):
            for selection, values in results.items():
                for key, metric in values.items():
                    tf.summary.scalar(f"{self.selection_split}/{selection or 'top'}/{key}", metric)
        logging.info(
            "step %d %s %s%s", step, self.selection_split, _format_metrics(chosen), " (best)" if improved else ""
        )
        self.manager.save(checkpoint_number=step)
        return self.config.patience and int(self.evals_without_improvement.numpy()) >= self.config.patience

    def train(self):
        """Trains to the configured number of epochs (or early stop), resuming from the workdir's last checkpoint."""
        config = self.config
        self._save_config()
        self._restore()
        eval_every = max(self.steps_per_epoch // max(config.evals_per_epoch, 1), 1)
        step = int(self.optimizer.iterations.numpy())
        stop = self.config.patience and int(self.evals_without_improvement.numpy()) >= self.config.patience
        logging.info(
            "training %s: %d steps (%d per epoch, %d epochs), XLA %s, %d replica(s)",
            config.model,
            self.total_steps,
            self.steps_per_epoch,
            config.epochs,
            self.jit_compile,
            self.strategy.num_replicas_in_sync,
        )
        while step < self.total_steps and not stop:
            epoch, position = divmod(step, self.steps_per_epoch)
            progress = keras.utils.Progbar(
                self.steps_per_epoch,
                stateful_metrics=["loss", "examples/s"],
                verbose=(1 if sys.stdout.isatty() else 2) if self.chief else 0,
            )
            progress.update(position)
            started, started_step = time.perf_counter(), step
            for batch in self._distributed_batches(epoch, position):
                terms = self.train_step(batch)
                step += 1
                rate = (step - started_step) * config.batch_size / (time.perf_counter() - started)
                progress.update(
                    step - epoch * self.steps_per_epoch, [("loss", float(terms["loss"])), ("examples/s", rate)]
                )
                if step % config.log_every_steps == 0 or step == self.total_steps:
                    self._log_scalars(step, terms, rate)
                end_of_epoch = step % self.steps_per_epoch == 0
                if end_of_epoch or (step % self.steps_per_epoch) % eval_every == 0:
                    stop = self._evaluate_and_select(step)
                    if stop:
                        logging.info("early stop: %d evaluations without improvement", config.patience)
                        break
        self.writer.flush()
        return step

    def _log_scalars(self, step, terms, rate):
        with self.writer.as_default(step=step):
            for key, value in terms.items():
                tf.summary.scalar(f"train/{key}", value)
            tf.summary.scalar("train/learning_rate", self.optimizer.learning_rate)
            tf.summary.scalar("train/examples_per_second", rate)

    def final_evaluation(self):
        """Restores the best checkpoint and writes the evaluation split's results to workdir/eval/<split>/."""
        best = workdir_lib.checkpoints_newest_first(self.best_manager.directory)
        if best:
            workdir_lib.restore(self.best_checkpoint, best[0], partial=True)
        records, predictions, results = self.evaluate(self.config.eval_split)
        if self.chief:
            evaluation.write_results(
                os.path.join(self.workdir, workdir_lib.EVAL_DIR, self.config.eval_split), records, predictions, results
            )
        return results

    def cleanup(self):
        if not self.chief:
            shutil.rmtree(self.output_dir, ignore_errors=True)


def _format_metrics(values):
    return " ".join(f"{key} {value:.2f}" for key, value in values.items())


def train_and_evaluate(config, workdir):
    """Trains (or resumes) in `workdir`, then evaluates the best checkpoint on `config.eval_split`.

    Returns:
        The evaluation split's metrics: {selection: {metric: percent}} ("" for VSLNet/VSLBase).
    """
    with runtime.reporting_lost_workers(config, workdir):
        trainer = Trainer(config, workdir)
        trainer.train()
        results = trainer.final_evaluation()
        trainer.cleanup()
    for selection, values in results.items():
        logging.info("%s %s%s", config.eval_split, f"[{selection}] " if selection else "", _format_metrics(values))
    return results
