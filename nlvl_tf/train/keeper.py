"""The best checkpoint so far by the selection metric, and the count of evaluations without improvement (patience)."""

import json
import os

import tensorflow as tf

from nlvl_tf import workdir as workdir_lib


class BestCheckpointKeeper:
    """Saves the model whenever the selection metric improves, into `<workdir>/best/`, with its metrics file.

    Its two counters are variables (create it under the strategy's scope) that the latest checkpoint also saves, so a
    resumed run keeps comparing against the same best value and the same patience count.

    Args:
        model: the model whose weights are kept.
        output_dir: the workdir (or a non-chief worker's scratch copy); the chief also writes best/metrics.json.
        step_counter: the variable that numbers checkpoints.
        patience: evaluations without improvement before `exhausted`; 0 never.
        chief: whether this process writes files others read.
    """

    def __init__(self, model, output_dir, step_counter, patience, chief):
        self.best_value = tf.Variable(-1.0, trainable=False, name="best_value")
        self.evals_without_improvement = tf.Variable(0, trainable=False, name="evals_without_improvement")
        self.checkpoint = tf.train.Checkpoint(model=model)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(output_dir, workdir_lib.BEST_DIR), max_to_keep=1, step_counter=step_counter
        )
        self.patience = int(patience)
        self.chief = chief

    @property
    def state(self):
        """The variables the latest checkpoint holds for this keeper."""
        return {"best_value": self.best_value, "evals_without_improvement": self.evals_without_improvement}

    @property
    def exhausted(self):
        return bool(self.patience) and int(self.evals_without_improvement.numpy()) >= self.patience

    def update(self, value, step, record):
        """Counts an evaluation whose selection metric is `value`; saves the model and `record` (JSON, written to
        best/metrics.json) when it beats the best so far. Returns whether it did."""
        improved = value > float(self.best_value.numpy())
        if not improved:
            self.evals_without_improvement.assign_add(1)
            return False
        self.best_value.assign(value)
        self.evals_without_improvement.assign(0)
        self.manager.save(checkpoint_number=step)
        if self.chief:
            workdir_lib.write_atomically(
                os.path.join(self.manager.directory, "metrics.json"), json.dumps(record, indent=2)
            )
        return True

    def restore_best(self):
        """Loads the best checkpoint's weights into the model (no-op when there is none)."""
        found = workdir_lib.checkpoints_newest_first(self.manager.directory)
        if found:
            workdir_lib.restore(self.checkpoint, found[0], partial=True)
