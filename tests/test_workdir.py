"""nlvl_tf.workdir: partial, corrupt and mismatched checkpoints, a lost checkpoint state file, a corrupt config, and
atomic writes, each refused or survived with a message that names the file."""

import os

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import workdir as workdir_lib


def _save(directory, steps, values=(1.0, 2.0, 3.0)):
    """A CheckpointManager directory with one checkpoint per step (the training loop's layout); its variable."""
    variable = tf.Variable(np.array(values, np.float32))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), str(directory), max_to_keep=None)
    for step in steps:
        variable.assign_add(tf.ones_like(variable))
        manager.save(checkpoint_number=step)
    return variable


def _damage(prefix, how):
    data, index = f"{prefix}.data-00000-of-00001", f"{prefix}.index"
    if how == "truncated data":
        with open(data, "rb") as f:
            contents = f.read()
        with open(data, "wb") as f:
            f.write(contents[: len(contents) // 2])
    elif how == "flipped byte":
        with open(data, "r+b") as f:
            f.seek(2)
            byte = f.read(1)
            f.seek(2)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif how == "empty data":
        open(data, "wb").close()
    elif how == "no data":
        os.remove(data)
    elif how == "truncated index":
        with open(index, "rb") as f:
            contents = f.read()
        with open(index, "wb") as f:
            f.write(contents[: len(contents) // 2])


def test_checkpoints_are_found_from_their_files_newest_step_first(tmp_path):
    _save(tmp_path, [27, 108, 54])
    expected = [str(tmp_path / f"ckpt-{step}") for step in (108, 54, 27)]
    assert workdir_lib.checkpoints_newest_first(str(tmp_path)) == expected
    (tmp_path / "checkpoint").write_text("garbage {{{")  # TF's state file lost or corrupt: nothing is lost
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    assert workdir_lib.checkpoints_newest_first(str(tmp_path)) == expected
    (tmp_path / "ckpt-200.data-00000-of-00001").write_bytes(b"")  # data without an index: not a checkpoint
    assert workdir_lib.checkpoints_newest_first(str(tmp_path)) == expected
    assert workdir_lib.checkpoints_newest_first(str(tmp_path / "nowhere")) == []


@pytest.mark.parametrize("how", ["truncated data", "flipped byte", "empty data", "no data", "truncated index"])
def test_a_damaged_checkpoint_is_named_and_nothing_is_restored_from_it(tmp_path, how):
    _save(tmp_path, [1])
    prefix = str(tmp_path / "ckpt-1")
    workdir_lib.check_checkpoint(prefix)
    _damage(prefix, how)
    with pytest.raises(workdir_lib.UnreadableCheckpointError, match=rf"^checkpoint {prefix} is partial or corrupt: "):
        workdir_lib.check_checkpoint(prefix)
    target = tf.Variable(np.zeros(3, np.float32))
    with pytest.raises(workdir_lib.UnreadableCheckpointError):
        workdir_lib.restore(tf.train.Checkpoint(v=target), prefix)
    np.testing.assert_array_equal(target.numpy(), [0, 0, 0])


def test_restore_refuses_a_checkpoint_of_another_model(tmp_path):
    _save(tmp_path, [1])
    other = tf.train.Checkpoint(v=tf.Variable(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"ckpt-1 does not fit this model \(was the config changed"):
        workdir_lib.restore(other, str(tmp_path / "ckpt-1"))
    target = tf.Variable(np.zeros(3, np.float32))
    workdir_lib.restore(tf.train.Checkpoint(v=target), str(tmp_path / "ckpt-1"))
    np.testing.assert_array_equal(target.numpy(), [2, 3, 4])


def test_a_corrupt_config_file_is_named_with_its_line(tmp_path):
    (tmp_path / workdir_lib.CONFIG_FILE).write_text('{\n  "model": "vslnet",\n  "seed": ', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{tmp_path / workdir_lib.CONFIG_FILE}:3:\d+: not a saved config"):
        workdir_lib.load_config(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="is not a training workdir"):
        workdir_lib.load_config(str(tmp_path / "elsewhere"))


def test_write_atomically_leaves_the_old_file_until_the_new_one_is_whole(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    workdir_lib.write_atomically(str(path), "old")
    real_replace = os.replace

    def killed_before_the_rename(source, target):
        assert open(source, encoding="utf-8").read() == "new" and path.read_text() == "old"
        raise KeyboardInterrupt  # stands for a kill between writing and renaming

    monkeypatch.setattr(os, "replace", killed_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        workdir_lib.write_atomically(str(path), "new")
    assert path.read_text() == "old"
    monkeypatch.setattr(os, "replace", real_replace)
    workdir_lib.write_atomically(str(path), "new")
    assert path.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["metrics.json"]
    workdir_lib.write_atomically(str(tmp_path / "upload.bin"), b"\x00\xff")
    assert (tmp_path / "upload.bin").read_bytes() == b"\x00\xff"
    with pytest.raises(TypeError):  # stands for a write that fails midway (a full disk)
        workdir_lib.write_atomically(str(path), 17)
    assert path.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["metrics.json", "upload.bin"]


def test_checkpoint_writes_cut_short_are_discarded(tmp_path):
    _save(tmp_path, [27])
    (tmp_path / "ckpt-54_temp").mkdir()  # what a run killed while writing step 54 leaves
    (tmp_path / "ckpt-54_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"")
    (tmp_path / "notes_temp").mkdir()  # not a checkpoint write: kept
    workdir_lib.discard_partial_checkpoints(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-27.data-00000-of-00001", "ckpt-27.index", "notes_temp"]
    workdir_lib.discard_partial_checkpoints(str(tmp_path / "nowhere"))
