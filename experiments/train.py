"""Trains a model from a config file, resuming from the workdir if it holds a checkpoint, then evaluates the best
checkpoint.

    python experiments/train.py --config=experiments/configs/synthetic.py:smoke --workdir=/tmp/run \
        [--config.train.batch_size=32 ...]
    python experiments/train.py [--config=experiments/configs/tacos.py] --list_config   # variants and every key
"""

import os

from absl import app, flags
from ml_collections import config_flags

from nlvl_tf import cli, configs
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.train import trainer

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file: path.py[:variant[,smoke]] (see --list_config)."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, logs and results go here.")
_LIST_CONFIG = flags.DEFINE_bool(
    "list_config", False, "Print the config file's variants and every config key with its value and meaning, then exit."
)


def main(argv):
    cli.reject_extra_arguments(argv)
    if _LIST_CONFIG.value:
        path = config_flags.get_config_filename(flags.FLAGS["config"]) if _CONFIG.value is not None else None
        print(configs.describe_file(path, _CONFIG.value))
        return
    missing = [name for name, value in (("config", _CONFIG.value), ("workdir", _WORKDIR.value)) if value is None]
    if missing:
        raise app.UsageError(f"--{' and --'.join(missing)} required (or --list_config)")
    cli.write_log_to(os.path.join(_WORKDIR.value, workdir_lib.LOG_FILE))
    trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    cli.run(main)
