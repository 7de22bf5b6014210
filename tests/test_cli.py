"""The entry points' error reporting: a user error or a fault is one `error:` line naming the flag, file or line at
fault (status 2 and 3), never a traceback; a bug keeps its traceback."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from nlvl_tf import configs
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import text
from nlvl_tf.model import vslnet

REPO = pathlib.Path(__file__).resolve().parents[1]
SMOKE = f"{REPO}/experiments/configs/synthetic.py:smoke"
RAISES = """
import sys
from nlvl_tf import cli, errors
raised = {"user": errors.InputError("input.txt:3: start must be a number"),
          "missing": errors.NotFoundError("no checkpoint in W/best"),
          "fault": ConnectionError("multi_worker: lost contact with another worker"), "bug": ZeroDivisionError("x"),
          "bug_value": ValueError("a library's own ValueError"),
          "denied": PermissionError(13, "Permission denied", "/srv/export"),
          "lost": ConnectionResetError(104, "Connection reset by peer")}
def main(argv):
    if len(argv) > 2:
        cli.write_log_to(argv[2])
    if argv[1] == "unreadable":
        open(argv[2] + ".missing/input.txt")
    raise raised[argv[1]]
cli.run(main)
"""


def run(*command, env=None):
    return subprocess.run(
        [sys.executable, *map(str, command)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})),
    )


def error_line(result):
    """The one `error:` line of a failed command, after checking there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    "kind, status, message",
    [
        ("user", 2, "error: input.txt:3: start must be a number"),
        ("missing", 2, "error: no checkpoint in W/best"),
        ("fault", 3, "error: multi_worker: lost contact with another worker"),
        ("denied", 2, "error: Permission denied: /srv/export"),
        ("lost", 3, "error: [Errno 104] Connection reset by peer"),  # a ConnectionError is a fault, not an OSError
    ],
)
def test_user_errors_and_faults_are_one_line_with_their_status(tmp_path, kind, status, message):
    result = run("-c", RAISES, kind)
    assert result.returncode == status and error_line(result) == message


def test_an_os_error_is_one_line_naming_the_path_with_its_traceback_in_the_log_file(tmp_path):
    log = tmp_path / "log.txt"
    result = run("-c", RAISES, "unreadable", log)
    assert result.returncode == 2
    assert error_line(result) == f"error: No such file or directory: {log}.missing/input.txt"
    logged = log.read_text(encoding="utf-8")
    assert f"error: No such file or directory: {log}.missing/input.txt" in logged
    assert "Traceback" in logged and "FileNotFoundError: [Errno 2]" in logged


def test_a_bug_keeps_its_traceback_and_nlvl_traceback_shows_a_user_errors():
    bug = run("-c", RAISES, "bug")
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "ZeroDivisionError: x" in bug.stderr
    library = run("-c", RAISES, "bug_value")  # only the project's own error types are user errors
    assert library.returncode == 1 and "ValueError: a library's own ValueError" in library.stderr
    shown = run("-c", RAISES, "user", env={"NLVL_TRACEBACK": "1"})
    assert shown.returncode == 2 and "Traceback" in shown.stderr and "error: input.txt:3" in shown.stderr


def test_an_unknown_config_key_names_the_flag_and_the_key(tmp_path):
    result = run(
        REPO / "experiments" / "train.py", f"--config={SMOKE}", f"--workdir={tmp_path}", "--config.model.hiden_size=3"
    )
    assert result.returncode == 2
    assert (
        error_line(result) == "error: --config.model.hiden_size: the config has no key 'hiden_size' (did you mean "
        "'hidden_size'?)"
    )
    assert not any(tmp_path.iterdir())


def test_a_dataset_that_is_not_built_names_the_command_and_leaves_no_workdir(tmp_path):
    workdir = tmp_path / "run"
    result = run(
        REPO / "experiments" / "train.py",
        f"--config={SMOKE}",
        f"--workdir={workdir}",
        f"--config.data.data_dir={tmp_path / 'nothing'}",
    )
    assert result.returncode == 2
    assert error_line(result).startswith(
        f"error: dataset 'nlvl_synthetic/small' is not built in {tmp_path / 'nothing'}: run `tfds build "
        f"tfds_builders/nlvl_synthetic --config=small --data_dir={tmp_path / 'nothing'}` first"
    )
    assert not workdir.exists()


def test_list_config_prints_the_variants_and_every_key_with_its_meaning():
    result = run(
        REPO / "experiments" / "train.py",
        f"--config={REPO}/experiments/configs/tacos.py:vslnet_l_pm,smoke",
        "--list_config",
    )
    assert result.returncode == 0, result.stderr
    assert "variants: vslbase_s, vslnet_s, vslbase_l" in result.stdout and "(add ,smoke to any)" in result.stdout
    assert "  model.clip_lengths = (20, 30): VSLNet-L scales" in result.stdout
    assert "  train.epochs = 1: training epochs" in result.stdout
    for section, entries in configs.SCHEMA.items():
        assert all(f"  {section}.{key} = " in result.stdout for key, _, _ in entries)


def test_a_corrupt_glove_file_is_named_with_its_line(tmp_path, synthetic_data_dir):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2\nperson 0.3\n", encoding="utf-8")
    result = run(
        REPO / "experiments" / "train.py",
        f"--config={SMOKE}",
        f"--workdir={tmp_path / 'run'}",
        f"--config.data.data_dir={synthetic_data_dir}",
        f"--config.data.word_vectors_path={glove}",
        f"--config.data.word_vectors_cache_dir={tmp_path / 'cache'}",
    )
    assert result.returncode == 2
    assert error_line(result) == f"error: {glove}, line 2: 1 values, expected 2"


def test_export_names_a_corrupt_best_checkpoint(tmp_path):
    """A workdir as training leaves it, with its best checkpoint cut short (a disk full, a partial copy)."""
    config = configs.base_config()
    config.data.update(max_video_len=16, max_query_len=6)
    config.model.update(hidden_size=16, num_heads=2, word_dim=8, char_dim=4)
    configs.resolve(config, video_feature_dim=8)
    vocabulary = text.Vocabulary(("the", "door"), ("t", "h", "e"), np.ones((2, config.model.word_dim), np.float32))
    vocabulary.save(str(tmp_path / workdir_lib.VOCABULARY_DIR))
    workdir_lib.write_atomically(str(tmp_path / workdir_lib.CONFIG_FILE), config.to_json_best_effort())
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / workdir_lib.BEST_DIR / "ckpt"))
    data = pathlib.Path(f"{path}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    result = run(REPO / "experiments" / "export.py", f"--workdir={tmp_path}", f"--export_dir={tmp_path / 'export'}")
    assert result.returncode == 2
    assert error_line(result).startswith(f"error: checkpoint {path} is partial or corrupt: ")
    assert not (tmp_path / "export").exists()
