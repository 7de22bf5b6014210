"""Turns a training run of the authors' PyTorch VSLNet (26hzhang/VSLNet `main_t7.py`) into a workdir of nlvl-tf that
evaluate.py and export.py take as they are: VSLNet in the authors' padding (docs/model.md 10). Needs torch
(`pip install "nlvl-tf[torch]"`) to read the checkpoint.

    python experiments/import_authors_checkpoint.py --checkpoint=ckpt_t7/.../model/vslnet_5432.t7 \\
        --configs=ckpt_t7/.../model/configs.json --dataset=datasets_t7/charades_new_128.pkl --workdir=W \\
        [--data_dir=D]
    python experiments/evaluate.py --workdir=W
"""

import json

from absl import flags

from nlvl_tf import cli
from nlvl_tf.model import authors_run

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Their checkpoint, <model_name>_<step>.t7 (a torch state dict).")
_CONFIGS = flags.DEFINE_string("configs", None, "Their configs.json, saved beside the checkpoint.")
_DATASET = flags.DEFINE_string("dataset", None, "Their dataset pickle (save_dir/<task>_<fv>_<max_pos_len>.pkl).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The workdir to write (must not exist, or be empty).")
_DATA_DIR = flags.DEFINE_string("data_dir", "", "The TFDS data dir recorded in its config (empty: TFDS's default).")


def main(argv):
    cli.reject_extra_arguments(argv)
    provenance = authors_run.import_run(
        _CHECKPOINT.value, _CONFIGS.value, _DATASET.value, _WORKDIR.value, data_dir=_DATA_DIR.value
    )
    print(json.dumps({"workdir": _WORKDIR.value, **provenance}))


if __name__ == "__main__":
    flags.mark_flags_as_required(["checkpoint", "configs", "dataset", "workdir"])
    cli.run(main)
