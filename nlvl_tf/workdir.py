"""The layout of a training workdir (and of a sweep: one training workdir per seed), its saved config and
checkpoints, and the file operations that keep a workdir whole when a run is killed at any point."""

import json
import os
import re
import shutil

import tensorflow as tf
from absl import logging

from nlvl_tf import configs, errors

CONFIG_FILE = "config.json"
VOCABULARY_DIR = "vocabulary"
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
EVAL_DIR = "eval"
LOG_FILE = "log.txt"  # every library's log messages, beside the quiet console
# A sweep directory W holds one training workdir per seed, W/seed_<seed>/, each with SEED_RESULT_FILE once its run
# (training and final evaluation) has finished, and the statistics over seeds in W/summary.json (+ a table, .txt).
SEED_RESULT_FILE = "result.json"
SWEEP_SUMMARY_FILE = "summary.json"
SWEEP_TABLE_FILE = "summary.txt"
_SEED_DIR = re.compile(r"seed_(\d+)")
# tf.train.CheckpointManager's file names: <directory>/ckpt-<number>.index (+ .data-*); the number is the step.
_CHECKPOINT_INDEX = re.compile(r"ckpt-(\d+)\.index")


class UnreadableCheckpointError(errors.InputError):
    """A checkpoint that does not read back whole: partly written, truncated or corrupt."""


def write_atomically(path, contents):
    """Writes a file (`contents` str: UTF-8 text; bytes: as they are) so that a reader, or a rerun after a kill, finds
    the old contents or the new, never part; a write that fails (a full disk) removes its partial file."""
    partial = f"{path}.partial"
    mode, encoding = ("wb", None) if isinstance(contents, bytes) else ("w", "utf-8")
    try:
        with open(partial, mode, encoding=encoding) as f:
            f.write(contents)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def seed_dir(sweep_dir, seed):
    """The training workdir of `seed` in a sweep directory."""
    return os.path.join(sweep_dir, f"seed_{seed}")


def sweep_seeds(sweep_dir):
    """The seeds that have a `seed_<seed>` workdir in `sweep_dir`, ascending."""
    if not os.path.isdir(sweep_dir):
        return []
    matches = (_SEED_DIR.fullmatch(name) for name in os.listdir(sweep_dir))
    return sorted(
        int(match.group(1)) for match in matches if match and os.path.isdir(os.path.join(sweep_dir, match[0]))
    )


def is_sweep(directory):
    """Whether `directory` is a sweep (it has a summary or seed workdirs) rather than one training workdir."""
    return os.path.exists(os.path.join(directory, SWEEP_SUMMARY_FILE)) or bool(sweep_seeds(directory))


def load_config(workdir):
    """The resolved config a training run saved in `workdir` (a flat config.json of nlvl-tf 0.1 is mapped)."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise errors.NotFoundError(f"{path} not found: {workdir!r} is not a training workdir (train.py writes it)")
    with open(path, encoding="utf-8") as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as error:
            raise errors.InputError(f"{path}:{error.lineno}:{error.colno}: not a saved config ({error.msg})") from None
    try:
        return configs.from_saved(values)
    except ValueError as error:
        raise errors.InputError(f"{path}: {error}") from None


def checkpoints_newest_first(directory):
    """The checkpoints in `directory` (prefixes `<directory>/ckpt-<step>` with an index file), highest step first.

    Read from the files rather than TF's `checkpoint` state file, so a lost or corrupt state file loses nothing.
    """
    if not os.path.isdir(directory):
        return []
    steps = [int(match.group(1)) for match in map(_CHECKPOINT_INDEX.fullmatch, os.listdir(directory)) if match]
    return [os.path.join(directory, f"ckpt-{step}") for step in sorted(steps, reverse=True)]


def discard_partial_checkpoints(directory):
    """Removes the `ckpt-<step>_temp` folders of checkpoint writes that a killed run left unfinished.

    TensorFlow writes a checkpoint into such a folder and renames its files into place when they are whole; a write
    restarted after a kill does not clear what the killed one left. Call it only while nothing writes there.
    """
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.endswith("_temp") and _CHECKPOINT_INDEX.fullmatch(name[: -len("_temp")] + ".index"):
                logging.info("removing %s, a checkpoint write cut short", os.path.join(directory, name))
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def check_checkpoint(path):
    """Reads every tensor of a checkpoint back (TF checks each one's checksum) without restoring anything.

    Raises:
        UnreadableCheckpointError naming the checkpoint when a file is missing, truncated or corrupt.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError) as error:
        reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
        raise UnreadableCheckpointError(f"checkpoint {path} is partial or corrupt: {reason}") from None


def restore(checkpoint, path, partial=False):
    """Restores `checkpoint` (a tf.train.Checkpoint) from `path` after `check_checkpoint`.

    Every object of `checkpoint` must be in the file; `partial` allows the file to hold more (e.g. the optimizer).

    Raises:
        UnreadableCheckpointError (see `check_checkpoint`); ValueError naming the checkpoint when it was written for
        another model (a config changed since).
    """
    check_checkpoint(path)
    try:
        status = checkpoint.restore(path)
        if partial:
            status = status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        reason = str(error).strip().splitlines()[0][:300]
        raise errors.InputError(
            f"checkpoint {path} does not fit this model (was the config changed since it was written?): {reason}"
        ) from None
