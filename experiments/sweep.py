"""Trains and evaluates a config once per seed, W/seed_<seed>/ each (as train.py would), then writes the statistics
over seeds: W/summary.json and the table W/summary.txt (printed too), with the mean, the sample standard deviation
(ddof=1), the minimum and the maximum of every metric, and the per-seed rows.

The same command resumes a sweep: finished seeds are skipped, an interrupted one resumes from its checkpoints.

    python experiments/sweep.py --config=experiments/configs/synthetic.py:demo --seeds=3 --workdir=/tmp/sweep \
        [--config.train.epochs=2 ...]          # seeds config.seed, config.seed + 1, config.seed + 2
    python experiments/sweep.py --config=... --seeds=1,7,42 --workdir=/tmp/sweep   # these seeds
"""

import os

from absl import flags
from ml_collections import config_flags

from nlvl_tf import cli
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.eval import summary
from nlvl_tf.train import sweep

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file: path.py[:variant[,smoke]]; --config.x.y=v overrides apply to every seed."
)
_SEEDS = flags.DEFINE_string(
    "seeds", "5", "N: N seeds counting up from config.seed; a,b,c (a comma list): those seeds."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "The sweep directory: one workdir per seed and the summary go here.")


def main(argv):
    cli.reject_extra_arguments(argv)
    seeds = sweep.parse_seeds(_SEEDS.value, _CONFIG.value.seed)
    cli.write_log_to(os.path.join(_WORKDIR.value, workdir_lib.LOG_FILE))
    print(summary.format_table(sweep.run_sweep(_CONFIG.value, _WORKDIR.value, seeds)))


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    cli.run(main)
