"""Sweeps over seeds: the statistics against numpy, seed parsing, and a 2-seed sweep of the smoke config that is
SIGKILLed in its second seed, then rerun: only the missing seed runs (resuming), and evaluate.py on the sweep prints
the same table."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nlvl_tf import workdir as workdir_lib
from nlvl_tf.eval import summary
from nlvl_tf.train import sweep
from tests.test_training import read_json, run

REPO = pathlib.Path(__file__).resolve().parents[1]
SMOKE = f"{REPO}/experiments/configs/synthetic.py:smoke"
SEEDS = (12345, 12346)  # the smoke config's seed and the next
# One epoch (27 steps) with two evaluations: each seed writes a checkpoint mid-epoch and ends at step 27.
SHORT = ("--config.train.epochs=1", "--config.train.evals_per_epoch=2")


# ------------------------------------------------------------------------------------------ statistics, seeds


def test_statistics_are_numpys_mean_sample_std_min_and_max_per_selection_and_metric():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, size=(3, 2, 2))  # seeds x selections x metrics
    per_seed = {
        seed: {
            sel: {metric: values[i, j, k] for k, metric in enumerate(("R1@0.5", "mIoU"))}
            for j, sel in enumerate(("pm", "u"))
        }
        for i, seed in enumerate((7, 3, 11))
    }
    result = summary.summarize(per_seed, "test")
    assert result["seeds"] == [7, 3, 11] and [row["seed"] for row in result["per_seed"]] == [7, 3, 11]
    for j, sel in enumerate(("pm", "u")):
        for k, metric in enumerate(("R1@0.5", "mIoU")):
            column = values[:, j, k]
            stats = result["statistics"][sel][metric]
            assert stats["mean"] == pytest.approx(np.mean(column), rel=1e-12)
            assert stats["std"] == pytest.approx(np.std(column, ddof=1), rel=1e-12)
            assert (stats["min"], stats["max"]) == (column.min(), column.max())
    table = summary.format_table(result)
    assert "[pm]" in table and "[u]" in table and "ddof=1" in table
    assert table.count(f"{values[1, 1, 0]:9.2f}") >= 1  # seed 3's u R1@0.5 is in its row


def test_a_hand_worked_summary_and_one_seed_has_no_std():
    result = summary.summarize({1: {"mIoU": 10.0}, 2: {"mIoU": 20.0}, 3: {"mIoU": 30.0}}, "test")
    assert result["statistics"] == {"mIoU": {"mean": 20.0, "std": 10.0, "min": 10.0, "max": 30.0}}
    single = summary.summarize({5: {"mIoU": 12.5}}, "validation")
    assert single["statistics"]["mIoU"]["std"] is None
    assert summary.format_table(single).splitlines()[-3].split() == ["std", "-"]
    with pytest.raises(ValueError, match="seed 2 reports metrics"):
        summary.summarize({1: {"mIoU": 1.0}, 2: {"R1@0.5": 1.0}}, "test")


@pytest.mark.parametrize(
    "spec, expected",
    [("3", [10, 11, 12]), ("1", [10]), ("4,1,9", [4, 1, 9]), (" 0 , 2 ", [0, 2])],
)
def test_seeds_are_a_count_from_config_seed_or_an_explicit_list(spec, expected):
    assert sweep.parse_seeds(spec, base_seed=10) == expected


@pytest.mark.parametrize(
    "spec, message", [("0", "at least 1"), ("two", "count N"), ("1,1", "repeated"), ("-1,2", "negative")]
)
def test_bad_seeds_are_refused_naming_the_value(spec, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_seeds(spec, base_seed=10)


def test_a_sweep_directory_is_recognised_and_unfinished_seeds_are_named(tmp_path):
    for name in ("seed_3", "seed_10", "seed_x", "other"):
        (tmp_path / name).mkdir()
    (tmp_path / "seed_4").write_text("a file, not a workdir")
    assert workdir_lib.sweep_seeds(tmp_path) == [3, 10] and workdir_lib.is_sweep(tmp_path)
    assert not workdir_lib.is_sweep(tmp_path / "other")
    (tmp_path / "seed_3" / workdir_lib.SEED_RESULT_FILE).write_text("{}")
    with pytest.raises(ValueError, match=r"seeds \[10\] have not finished"):
        summary.finished_seeds(tmp_path)


# ------------------------------------------------------------------------------------------ a killed sweep


def _files(directory):
    """{relative path: (size, mtime in ns)} of every file under `directory`."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in pathlib.Path(directory).rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def killed_sweep(synthetic_data_dir, tmp_path_factory):
    """A 2-seed smoke sweep SIGKILLed after its second seed's first checkpoint, then rerun to the end.

    Returns the sweep directory, the first seed's files before and after the rerun, and the rerun's output.
    """
    workdir = tmp_path_factory.mktemp("sweep")
    command = [
        sys.executable,
        str(REPO / "experiments" / "sweep.py"),
        f"--config={SMOKE}",
        f"--seeds={len(SEEDS)}",
        f"--workdir={workdir}",
        f"--config.data.data_dir={synthetic_data_dir}",
        *SHORT,
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    second = pathlib.Path(workdir_lib.seed_dir(workdir, SEEDS[1]))
    deadline = time.time() + 600
    while not (second / "checkpoints" / "checkpoint").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the sweep ended before it was killed"
    first = workdir_lib.seed_dir(workdir, SEEDS[0])
    before = _files(first)
    killed_at = workdir_lib.checkpoints_newest_first(str(second / "checkpoints"))
    rerun = run(command)
    return {"workdir": workdir, "before": before, "after": _files(first), "killed_at": killed_at, "rerun": rerun}


def test_a_killed_sweep_rerun_finishes_only_the_missing_seed(killed_sweep):
    workdir, log = killed_sweep["workdir"], killed_sweep["rerun"].stderr
    first, second = (workdir_lib.seed_dir(workdir, seed) for seed in SEEDS)
    assert os.path.exists(os.path.join(first, workdir_lib.SEED_RESULT_FILE))
    assert killed_sweep["after"] == killed_sweep["before"]  # the finished seed: not a file rewritten
    assert f"seed {SEEDS[0]} (1 of 2): finished earlier, skipped" in log
    killed_at = killed_sweep["killed_at"]  # the mid-epoch checkpoint only
    assert len(killed_at) == 1 and 0 < int(killed_at[0].rsplit("-", 1)[1]) < 27, killed_at
    assert f"resumed from {killed_at[0]} at step {killed_at[0].rsplit('-', 1)[1]}" in log
    assert workdir_lib.checkpoints_newest_first(os.path.join(second, "checkpoints"))[0].endswith("ckpt-27")
    assert json.loads(pathlib.Path(second, workdir_lib.SEED_RESULT_FILE).read_text())["seed"] == SEEDS[1]


def test_summary_mean_and_std_equal_numpys_on_each_seeds_metrics_json(killed_sweep):
    workdir = killed_sweep["workdir"]
    result = read_json(workdir / workdir_lib.SWEEP_SUMMARY_FILE)
    files = [
        read_json(pathlib.Path(workdir_lib.seed_dir(workdir, seed), "eval", "test", "metrics.json")) for seed in SEEDS
    ]
    assert result["seeds"] == list(SEEDS) and result["split"] == "test"
    assert [row["metrics"] for row in result["per_seed"]] == files
    assert set(result["statistics"]) == set(files[0]) and len(files[0]) == 7
    for metric, stats in result["statistics"].items():
        column = np.array([values[metric] for values in files])
        assert stats["mean"] == pytest.approx(np.mean(column), rel=1e-12, abs=1e-12), metric
        assert stats["std"] == pytest.approx(np.std(column, ddof=1), rel=1e-12, abs=1e-12), metric
        assert (stats["min"], stats["max"]) == (column.min(), column.max()), metric
    table = (workdir / workdir_lib.SWEEP_TABLE_FILE).read_text(encoding="utf-8")
    assert table == summary.format_table(result) + "\n"
    assert killed_sweep["rerun"].stdout.endswith(table)  # what sweep.py prints last (after the progress bars)


def test_evaluate_on_a_sweep_re_evaluates_each_seed_and_prints_the_same_table(killed_sweep, synthetic_data_dir):
    workdir = killed_sweep["workdir"]
    written = {
        seed: pathlib.Path(workdir_lib.seed_dir(workdir, seed), "eval", "test", "metrics.json") for seed in SEEDS
    }
    before = {seed: path.stat().st_mtime_ns for seed, path in written.items()}
    printed = run(
        [
            sys.executable,
            str(REPO / "experiments" / "evaluate.py"),
            f"--workdir={workdir}",
            f"--data_dir={synthetic_data_dir}",
        ]
    ).stdout
    assert printed == (workdir / workdir_lib.SWEEP_TABLE_FILE).read_text(encoding="utf-8")
    assert read_json(workdir / "eval" / "test" / workdir_lib.SWEEP_SUMMARY_FILE) == read_json(
        workdir / workdir_lib.SWEEP_SUMMARY_FILE
    )
    assert all(path.stat().st_mtime_ns > before[seed] for seed, path in written.items())  # re-evaluated, written


def test_resuming_a_seed_with_another_config_is_refused_naming_the_keys(killed_sweep):
    directory = workdir_lib.seed_dir(killed_sweep["workdir"], SEEDS[0])
    config = workdir_lib.load_config(directory)
    config.seed, config.data.data_dir = 1, "/elsewhere"  # per run and where the data is: allowed to differ
    sweep.check_same_config(config, directory)
    config.train.epochs, config.model.hidden_size = 3, 32
    with pytest.raises(ValueError, match=r"model.hidden_size: 64 -> 32; train.epochs: 1 -> 3"):
        sweep.check_same_config(config, directory)
