"""Faults, with nothing lost: training SIGKILLed at random points (during a checkpoint write too) resumes to the
bit-identical end of an uninterrupted run; a damaged checkpoint is skipped or named; a killed `tfds build` rerun
builds the same dataset; a lost multi_worker peer stops the other worker with one error line within a bound.

The default suite kills training 3 times (during start-up, during a checkpoint write, mid-epoch) and one worker of
two; `pytest -m slow` kills training 10 times at random points and loses each worker in each way (killed, hung).
"""

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from nlvl_tf import configs, runtime
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import splits as splits_lib
from tests.test_training import _free_port, read_json, run, train_command

REPO = pathlib.Path(__file__).resolve().parents[1]
EPOCHS = "--config.train.epochs=3"  # 81 steps, an evaluation and two checkpoint writes (best, latest) every 27
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
POLL_S = 0.0005  # a checkpoint write of the smoke model lasts milliseconds


# ------------------------------------------------------------------------------------------ helpers


def assert_same_run(workdir, reference):
    """Same metrics, predictions and final weights, bit for bit, and nothing half-written left behind."""
    for name in ("eval/test/metrics.json", "eval/test/length_buckets.json", "best/metrics.json"):
        assert read_json(workdir / name) == read_json(reference / name), name
    assert (workdir / "eval/test/predictions.jsonl").read_bytes() == (
        reference / "eval/test/predictions.jsonl"
    ).read_bytes()
    for directory in (workdir_lib.CHECKPOINTS_DIR, workdir_lib.BEST_DIR):
        ours = workdir_lib.checkpoints_newest_first(str(workdir / directory))[0]
        theirs = workdir_lib.checkpoints_newest_first(str(reference / directory))[0]
        assert os.path.basename(ours) == os.path.basename(theirs)
        ours, theirs = tf.train.load_checkpoint(ours), tf.train.load_checkpoint(theirs)
        keys = ours.get_variable_to_shape_map()
        assert keys == theirs.get_variable_to_shape_map()
        for key in set(keys) - {"save_counter/.ATTRIBUTES/VARIABLE_VALUE"}:  # saves made by this process: bookkeeping
            assert np.array_equal(ours.get_tensor(key), theirs.get_tensor(key)), (directory, key)
    leftovers = [path for path in workdir.rglob("*") if path.name.endswith(("_temp", ".partial"))]
    assert not leftovers, leftovers


def newest_step(workdir):
    found = workdir_lib.checkpoints_newest_first(str(workdir / workdir_lib.CHECKPOINTS_DIR))
    return int(found[0].rsplit("-", 1)[1]) if found else -1


def writing(directory):
    """The `ckpt-N_temp` folder a checkpoint write fills before its files are renamed into place, if any."""
    try:
        return next((directory / name for name in os.listdir(directory) if name.endswith("_temp")), None)
    except FileNotFoundError:
        return None


def wait_for_trigger(process, workdir, trigger):
    """Returns when it is time to kill `process` for `trigger`, or when the process has ended.

    Triggers: ("after", s): s seconds after the start. ("write", folder): as soon as a checkpoint write into
    `workdir/folder` has begun. ("after_checkpoint", s): s seconds after a checkpoint newer than the restored one.
    ("eval", None): as soon as the final evaluation starts writing workdir/eval/.
    """
    kind, value = trigger
    started, first_step = time.monotonic(), newest_step(workdir)
    stale = kind == "write" and writing(workdir / value)  # left by the previous kill, until this run removes it
    while process.poll() is None:
        if kind == "after" and time.monotonic() - started >= value:
            return
        if kind == "write":
            if writing(workdir / value) is None:
                stale = False
            elif not stale:
                return
        if kind == "after_checkpoint" and newest_step(workdir) > first_step:
            time.sleep(value)
            return
        if kind == "eval" and (workdir / workdir_lib.EVAL_DIR).exists():
            return
        time.sleep(POLL_S)


def train_with_kills(command, workdir, triggers):
    """Starts `command`, SIGKILLs it at each trigger in turn and starts it again; then lets the last run finish.

    Returns one entry per kill: the trigger, the seconds it ran, and the checkpoint write it cut short (or None).
    """
    kills = []
    for trigger in triggers:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        started = time.monotonic()
        wait_for_trigger(process, workdir, trigger)
        if process.poll() is not None:
            assert process.returncode == 0, f"the run failed on its own before {trigger}"
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        cut = next(
            filter(None, (writing(workdir / d) for d in (workdir_lib.CHECKPOINTS_DIR, workdir_lib.BEST_DIR))), None
        )
        kills.append((trigger, round(time.monotonic() - started, 1), cut and cut.name))
    run(command)
    print("kills (trigger, seconds, write cut short):", kills)
    return kills


@pytest.fixture(scope="module")
def reference_run(synthetic_data_dir, tmp_path_factory):
    """One uninterrupted deterministic run of the smoke config for 3 epochs: its workdir."""
    workdir = tmp_path_factory.mktemp("reference")
    run(train_command(workdir, synthetic_data_dir, EPOCHS))
    return workdir


# ------------------------------------------------------------------------------------ training


@pytest.mark.slow  # the default run's killed run ends bit-identical to reference_run, which shows this too
def test_two_runs_with_the_same_seed_are_bit_identical(reference_run, synthetic_data_dir, tmp_path):
    run(train_command(tmp_path, synthetic_data_dir, EPOCHS))
    assert_same_run(tmp_path, reference_run)


def test_sigkill_during_start_up_a_checkpoint_write_and_an_epoch_resumes_to_the_same_run(
    reference_run, synthetic_data_dir, tmp_path
):
    rng = random.Random(7)
    triggers = [
        ("after", rng.uniform(2, 10)),
        ("write", workdir_lib.CHECKPOINTS_DIR),
        ("after_checkpoint", rng.uniform(0.5, 3)),
    ]
    kills = train_with_kills(train_command(tmp_path, synthetic_data_dir, EPOCHS), tmp_path, triggers)
    assert len(kills) == 3
    assert kills[1][2] and kills[1][2].endswith("_temp"), f"the kill missed the checkpoint write: {kills}"
    assert_same_run(tmp_path, reference_run)


@pytest.mark.slow
def test_sigkill_at_ten_random_points_resumes_to_the_same_run(synthetic_data_dir, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    command = lambda workdir: train_command(workdir, synthetic_data_dir)  # noqa: E731 (10 epochs, 270 steps)
    run(command(reference))
    rng = random.Random(11)
    # Shuffled; together they move the run on by at most ~8 of its 10 epochs, so every kill finds the run alive.
    triggers = [("after", rng.uniform(1, 15)) for _ in range(3)] + [
        ("after_checkpoint", rng.uniform(0, 4)) for _ in range(3)
    ]
    triggers += [("write", workdir_lib.CHECKPOINTS_DIR)] * 2 + [("write", workdir_lib.BEST_DIR)]
    rng.shuffle(triggers)
    kills = train_with_kills(command(resumed), resumed, triggers + [("eval", None)])
    assert len(kills) == 10
    assert_same_run(resumed, reference)


def test_a_corrupt_newest_checkpoint_and_a_lost_state_file_resume_from_the_one_before(
    reference_run, synthetic_data_dir, tmp_path
):
    workdir = tmp_path / "run"
    shutil.copytree(reference_run, workdir)
    shutil.rmtree(workdir / workdir_lib.EVAL_DIR)
    newest, before = workdir_lib.checkpoints_newest_first(str(workdir / workdir_lib.CHECKPOINTS_DIR))[:2]
    data = pathlib.Path(f"{newest}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    (workdir / workdir_lib.CHECKPOINTS_DIR / "checkpoint").write_text("garbage {{{")
    result = run(train_command(workdir, synthetic_data_dir, EPOCHS))
    assert f"checkpoint {newest} is partial or corrupt" in result.stderr
    assert f"resumed from {before}" in result.stderr
    assert_same_run(workdir, reference_run)


def test_training_refuses_a_workdir_whose_checkpoints_are_all_damaged(reference_run, synthetic_data_dir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(reference_run, workdir)
    for path in (workdir / workdir_lib.CHECKPOINTS_DIR).glob("*.data-*"):
        path.write_bytes(b"")
    result = subprocess.run(
        train_command(workdir, synthetic_data_dir, EPOCHS), capture_output=True, text=True, env=ENV, timeout=600
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: no checkpoint in {workdir / workdir_lib.CHECKPOINTS_DIR} reads back whole")
    )


# --------------------------------------------------------------------------------------- tfds build


def dataset_contents(data_dir):
    """Every example of every split of nlvl_synthetic/small, decoded, in file order."""
    builder = tfds.builder("nlvl_synthetic/small", data_dir=str(data_dir))
    return {
        split: [
            (ex["video_id"], ex["duration"], ex["features"].tobytes(), *map(list, ex["annotations"].values()))
            for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))
        ]
        for split in sorted(builder.info.splits)
    }


def test_tfds_build_killed_midway_then_rerun_builds_the_same_dataset(synthetic_data_dir, tmp_path):
    command = [
        os.path.join(os.path.dirname(sys.executable), "tfds"),
        "build",
        str(REPO / "tfds_builders" / "nlvl_synthetic"),
        "--config=small",
        f"--data_dir={tmp_path}",
    ]
    versions = tmp_path / "nlvl_synthetic" / "small"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    while process.poll() is None and not any("tfrecord" in path.name for path in versions.glob("incomplete*/*")):
        time.sleep(POLL_S)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the build ended before it was killed"
    assert not (versions / "1.0.0").exists() and list(versions.glob("incomplete*"))
    config = configs.base_config()
    config.data.data_dir = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not (built|prepared)"):  # a killed build is not a dataset
        splits_lib.dataset_builder(config.data)
    run(command)
    assert splits_lib.dataset_builder(config.data).info.splits["train"].num_examples == 500
    assert dataset_contents(tmp_path) == dataset_contents(synthetic_data_dir)


# -------------------------------------------------------------------------------------- multi_worker

HEARTBEAT_S = 10
CONNECT_S = 20
BOUND_S = HEARTBEAT_S + 20  # detection, then the step in flight and the process's exit


def start_workers(workdir, data_dir, log_dir, *overrides, indices=(0, 1)):
    """Workers of a two-worker cluster on localhost (only `indices` are started), stderr to log_dir/<index>.log."""
    cluster = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    processes = {}
    for index in indices:
        env = dict(
            ENV, TF_CONFIG=json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})
        )
        command = train_command(
            workdir,
            data_dir,
            "--config.train.strategy=multi_worker",
            "--config.train.deterministic=false",
            f"--config.train.multi_worker_heartbeat_timeout={HEARTBEAT_S}",
            f"--config.train.multi_worker_connect_timeout={CONNECT_S}",
            *overrides,
        )
        with open(log_dir / f"{index}.log", "w", encoding="utf-8") as log:
            processes[index] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
    return processes


def wait_until_training(log, processes, timeout=600):
    deadline = time.monotonic() + timeout
    while "training vslnet" not in log.read_text() and time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes.values()), log.read_text()[-3000:]
        time.sleep(0.2)


def lose_worker(processes, victim, how, log_dir):
    """Kills or stops `victim` and waits for the other worker: (its exit status, seconds, its error line)."""
    survivor = processes[1 - victim]
    processes[victim].send_signal(how)
    lost = time.monotonic()
    try:
        survivor.wait(timeout=300)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
    seconds = time.monotonic() - lost
    stderr = (log_dir / f"{1 - victim}.log").read_text()
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    print(
        f"worker {victim} lost ({signal.Signals(how).name}): worker {1 - victim} exited {survivor.returncode} "
        f"after {seconds:.1f} s: {errors[0]}"
    )
    return survivor.returncode, seconds, errors[0]


@pytest.mark.parametrize(
    "victim, how",
    [
        pytest.param(1, signal.SIGKILL, id="worker1-killed"),
        pytest.param(0, signal.SIGKILL, id="worker0-killed", marks=pytest.mark.slow),
        pytest.param(1, signal.SIGSTOP, id="worker1-hung", marks=pytest.mark.slow),  # alive, silent
        pytest.param(0, signal.SIGSTOP, id="worker0-hung", marks=pytest.mark.slow),
    ],
)
def test_a_lost_worker_stops_the_other_with_one_error_line_within_the_bound(synthetic_data_dir, tmp_path, victim, how):
    processes = start_workers(tmp_path / "run", synthetic_data_dir, tmp_path)
    wait_until_training(tmp_path / "0.log", processes)
    time.sleep(random.Random(victim).uniform(1, 3))
    status, seconds, error = lose_worker(processes, victim, how, tmp_path)
    assert status == 3 and seconds < BOUND_S
    assert error.startswith("error: multi_worker: lost contact with another worker (")
    assert f"resumes from the last checkpoint in {tmp_path / 'run'}" in error


HEARTBEAT_MESSAGE = (
    "{{function_node __wrapped__CollectiveReduceV2}} Collective ops is aborted by: Error reported "
    "from /job:worker/task:1: The following tasks are unhealthy (stopped sending heartbeats):\n"
    "/job:worker/replica:0/task:1\nThe tasks have crashed. Check the task logs"
)
BARRIER_MESSAGE = (
    "Barrier timed out. Id: [Init]Wait_for_all_tasks_to_register::0.\nThe first task at the barrier: "
    "/job:worker/replica:0/task:0. Some timed out task names:\n/job:worker/replica:0/task:1\n\n\nRPC: "
    "/tensorflow.CoordinationService/RegisterTask from remote target /job:worker/replica:0/task:0"
)
LEADER_MESSAGE = (
    "Failed to send RPC to coordination service. Either the leader task was preempted/died/restarted "
    "unexpectedly or this task is experiencing network issues."
)


@pytest.mark.parametrize(
    "error, what",
    [
        (tf.errors.UnavailableError(None, None, HEARTBEAT_MESSAGE), "/job:worker/replica:0/task:1 stopped sending"),
        (tf.errors.DeadlineExceededError(None, None, BARRIER_MESSAGE), "/job:worker/replica:0/task:1 never connected"),
        (
            tf.errors.UnavailableError(
                None,
                None,
                "Graph execution error:\n\nCollective ops is aborted by: recvmsg:"
                "Connection reset by peer\nAdditional GRPC error",
            ),
            "recvmsg:Connection",
        ),
        (tf.errors.UnavailableError(None, None, LEADER_MESSAGE), r"the leader \(the chief, or worker 0\), which runs"),
    ],
)
def test_a_lost_peer_error_names_the_worker_and_what_to_do(error, what):
    config = configs.base_config().train
    config.strategy = "multi_worker"
    with pytest.raises(
        runtime.WorkerLostError,
        match=rf"^multi_worker: lost contact with another worker \({what}"
        rf".*\); a worker that dies",
    ):
        with runtime.reporting_lost_workers(config, "/w"):
            raise error
    config.strategy = "default"  # a single process has no peer to lose: the error is not dressed up
    with pytest.raises(type(error)):
        with runtime.reporting_lost_workers(config, "/w"):
            raise error


def test_a_worker_that_never_starts_stops_the_other_within_the_connect_timeout(synthetic_data_dir, tmp_path):
    processes = start_workers(tmp_path / "run", synthetic_data_dir, tmp_path, indices=(0,))
    started = time.monotonic()
    processes[0].wait(timeout=300)
    seconds = time.monotonic() - started
    stderr = (tmp_path / "0.log").read_text()
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert processes[0].returncode == 3 and "Traceback" not in stderr and len(errors) == 1, stderr[-3000:]
    assert "/job:worker/replica:0/task:1" in errors[0]
    print(f"worker 1 never started: worker 0 exited after {seconds:.1f} s: {errors[0]}")
    assert seconds < CONNECT_S + 30  # start-up (imports) plus the connect timeout


@pytest.mark.slow
def test_after_a_lost_worker_both_workers_restarted_finish_the_run(synthetic_data_dir, tmp_path):
    processes = start_workers(tmp_path / "run", synthetic_data_dir, tmp_path, "--config.train.epochs=2")
    wait_until_training(tmp_path / "0.log", processes)
    while not (tmp_path / "run" / workdir_lib.CHECKPOINTS_DIR / "checkpoint").exists():
        time.sleep(0.2)
    lose_worker(processes, 1, signal.SIGKILL, tmp_path)
    processes = start_workers(tmp_path / "run", synthetic_data_dir, tmp_path, "--config.train.epochs=2")
    for process in processes.values():
        assert process.wait(timeout=900) == 0, (tmp_path / "0.log").read_text()[-3000:]
    assert "resumed from" in (tmp_path / "0.log").read_text()
    assert (tmp_path / "run" / "eval" / "test" / "metrics.json").exists()
