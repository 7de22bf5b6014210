"""Trains a model from a config file, resuming from the workdir if it holds a checkpoint, then evaluates the best
checkpoint.

    python experiments/train.py --config=experiments/configs/synthetic.py:smoke --workdir=/tmp/run \
        [--config.batch_size=32 ...]
"""

from absl import flags
from ml_collections import config_flags

from nlvl_tf import cli
from nlvl_tf.train import trainer

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (path.py[:variant]).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs and results go here.")


def main(argv):
    cli.reject_extra_arguments(argv)
    trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main)
