"""A sweep: one config trained and evaluated once per seed, each run in its own workdir, then the statistics over
seeds (`eval.summary`).

Seeds run one after another in this process, W/seed_<seed>/ each, exactly as `train.py --config.seed=<seed>
--workdir=W/seed_<seed>` would run them. A seed whose run finished (its result file is written after the final
evaluation) is skipped, so the same command after a kill runs only what is missing: the interrupted seed resumes from
its last checkpoint (`trainer`'s resume) and the seeds after it start.
"""

import copy
import json
import os

import keras
from absl import logging

from nlvl_tf import configs
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.eval import evaluation, summary
from nlvl_tf.train import trainer


def parse_seeds(spec, base_seed):
    """The seeds of `--seeds`: "N" -> N seeds counting up from `base_seed` (config.seed); "a,b,..." -> those.

    Raises:
        ValueError naming the bad value (not integers, negative, repeated, or no seed).
    """
    parts = [part.strip() for part in str(spec).split(",")]
    try:
        numbers = [int(part) for part in parts if part]
    except ValueError:
        raise ValueError(f"--seeds must be a count N or a list of seeds a,b,c; got {spec!r}") from None
    if len(parts) == 1:
        if not numbers or numbers[0] < 1:
            raise ValueError(f"--seeds={spec}: the number of seeds must be at least 1")
        seeds = [base_seed + i for i in range(numbers[0])]
    else:
        seeds = numbers
    negative = [seed for seed in seeds if seed < 0]
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if not seeds or negative or repeated:
        raise ValueError(
            f"--seeds={spec}: seeds must be distinct integers >= 0 (negative {negative}, repeated {repeated})"
        )
    return seeds


# Keys that say where and how a run executes, not what it computes: a seed may resume with them changed (data moved,
# another machine or strategy). The seed is per run by design.
_NOT_COMPARED = (
    "seed",
    "data.data_dir",
    "data.word_vectors_cache_dir",
    "train.strategy",
    "train.num_cpu_replicas",
    "train.multi_worker_connect_timeout",
    "train.multi_worker_heartbeat_timeout",
    "train.xla",
    "train.deterministic",
    "train.log_every_steps",
    "eval.batch_size",
)


def _flat(values, prefix=""):
    """`section.key` -> JSON value of a config's JSON object."""
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _comparable(config):
    """The config's keys and plain JSON values that decide what a run computes."""
    values = dict(_flat(json.loads(config.to_json_best_effort())))
    return {key: value for key, value in values.items() if key not in _NOT_COMPARED}


def check_same_config(config, directory):
    """Refuses to resume or skip a seed's workdir trained with another config than `config` (other than the seed
    and the keys of `_NOT_COMPARED`), so a summary never mixes configs.

    Raises:
        ValueError naming the keys that differ and their values.
    """
    saved = workdir_lib.load_config(directory)
    # What this config would have saved: resolved with the data-derived values the run recorded.
    ours = configs.resolve(copy.deepcopy(config), saved.data.video_feature_dim)
    theirs, ours = _comparable(saved), _comparable(ours)
    changed = [
        f"{key}: {theirs.get(key)!r} -> {ours.get(key)!r}"
        for key in sorted(set(theirs) | set(ours))
        if theirs.get(key) != ours.get(key)
    ]
    if changed:
        raise ValueError(
            f"{directory} was trained with another config than this sweep's ({'; '.join(changed)}): run the sweep "
            f"with its original config, or into a new --workdir"
        )


def run_seed(config, seed, directory):
    """Trains and evaluates one seed in `directory` (resuming), then writes its result file, which marks it done."""
    seed_config = copy.deepcopy(config)
    seed_config.seed = seed
    keras.backend.clear_session()  # the previous seed's models and traced functions
    results = trainer.train_and_evaluate(seed_config, directory)
    record = {"seed": seed, "split": seed_config.eval.split, "metrics": evaluation.flatten_single(results)}
    workdir_lib.write_atomically(
        os.path.join(directory, workdir_lib.SEED_RESULT_FILE), json.dumps(record, indent=2) + "\n"
    )
    return record


def read_result(directory):
    """The result file `run_seed` wrote in a seed's workdir: {"seed", "split", "metrics"}."""
    with open(os.path.join(directory, workdir_lib.SEED_RESULT_FILE), encoding="utf-8") as f:
        return json.load(f)


def run_sweep(config, workdir, seeds):
    """Runs `config` once per seed into workdir/seed_<seed>/ (skipping finished seeds, resuming an interrupted one)
    and writes workdir/summary.json and summary.txt over `seeds`.

    Returns:
        The summary (`eval.summary.summarize`).
    """
    if config.train.strategy == "multi_worker":
        raise ValueError(
            "sweep.py runs the seeds one after another in one process, which multi_worker cannot: run train.py "
            "--config.seed=<seed> --workdir=W/seed_<seed> on the cluster per seed, then sweep.py to summarize"
        )
    records = {}
    for index, seed in enumerate(seeds, 1):
        directory = workdir_lib.seed_dir(workdir, seed)
        if os.path.exists(os.path.join(directory, workdir_lib.CONFIG_FILE)):
            check_same_config(config, directory)
        if os.path.exists(os.path.join(directory, workdir_lib.SEED_RESULT_FILE)):
            logging.info("seed %d (%d of %d): finished earlier, skipped (%s)", seed, index, len(seeds), directory)
            records[seed] = read_result(directory)
            continue
        logging.info("seed %d (%d of %d): training in %s", seed, index, len(seeds), directory)
        records[seed] = run_seed(config, seed, directory)
    splits = {record["split"] for record in records.values()}
    if len(splits) > 1:
        raise ValueError(f"the seeds of {workdir} were evaluated on different splits {sorted(splits)}")
    result = summary.summarize({seed: record["metrics"] for seed, record in records.items()}, splits.pop())
    summary.write_summary(workdir, result)
    return result
