"""The whole loop on the embedded synthetic dataset, on a CPU in minutes: build nlvl_synthetic, train VSLNet,
evaluate it next to two trivial baselines (a uniformly random span; the training set's mean moment), export it as
a SavedModel and answer one query through it.

    python experiments/demo.py [--workdir=/tmp/nlvl_demo] [--config.train.epochs=5 ...]
"""

import os
import shutil

from absl import flags
from ml_collections import config_flags

from nlvl_tf import cli, demo
from nlvl_tf import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(REPO, "experiments", "configs", "synthetic.py:demo"), "Experiment config file."
)
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/nlvl_demo", "Where the dataset, checkpoints and results go.")
_FIGURES_COPY = flags.DEFINE_string(
    "figures_copy_dir", None, "Also copy the figures here (the README's docs/figures/ are written this way)."
)


def main(argv):
    cli.reject_extra_arguments(argv)
    cli.write_log_to(os.path.join(_WORKDIR.value, workdir_lib.LOG_FILE))
    print("\n" + demo.run(_CONFIG.value, _WORKDIR.value, os.path.join(REPO, "tfds_builders")) + "\n")
    if _FIGURES_COPY.value:
        plots = os.path.join(_WORKDIR.value, "eval", _CONFIG.value.eval.split, "plots")
        shutil.copytree(plots, _FIGURES_COPY.value, dirs_exist_ok=True)


if __name__ == "__main__":
    cli.run(main)
