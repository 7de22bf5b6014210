"""A training run of the authors' PyTorch VSLNet (26hzhang/VSLNet `main_t7.py`) as a workdir of nlvl-tf, which
`evaluate.py` and `export.py` take as they are (docs/model.md 10).

A run of theirs leaves three files: the checkpoint `<model_name>_<step>.t7` (a torch state dict,
`authors_checkpoint`), `configs.json` (their argparse namespace) and the dataset pickle of `util/data_gen.py`
(`word_dict`, `char_dict`, `word_vector`, and the records of each split). The workdir gets:

- config.json: VSLNet in the authors' padding with the CQA output bias, the sizes of their configs, their resampling
  (`data.resample_include_last=False`), labels (IoU argmax, highlighting extension 0.1, which their PyTorch loader
  hard-codes) and batch size (for evaluation too: their outputs depend on what a batch holds);
- vocabulary/: their words and characters in their id order (line number = id; their <PAD> and <UNK> are ids 0 and
  1, as ours) and the GloVe rows of the checkpoint;
- best/: the checkpoint, as the trainer's best-checkpoint keeper writes it;
- authors_import.json: where it all came from.

The workdir is written aside and renamed into place, so a failed import leaves nothing behind.
"""

import json
import os
import pickle
import shutil

import numpy as np
import tensorflow as tf
from absl import logging

from nlvl_tf import configs, errors
from nlvl_tf import workdir as workdir_lib
from nlvl_tf.data import text
from nlvl_tf.model import authors_checkpoint, vslnet

PROVENANCE_FILE = "authors_import.json"
# Their dataset pickle's reserved entries (`util/data_gen.py`): ids 0 and 1, which their loader pads with and maps
# unknown words to, like nlvl-tf's PAD_ID and UNK_ID.
AUTHORS_PAD, AUTHORS_UNK = "<PAD>", "<UNK>"
# (task, video_feature_dim) of their configs -> (TFDS dataset, builder config) holding the same annotations.
DATASETS = {
    ("charades", 1024): ("charades_sta", "i3d"),
    ("activitynet", 1024): ("activitynet_captions", "i3d"),
    ("activitynet", 500): ("activitynet_captions", "c3d"),
    ("tacos", 1024): ("tacos", "tan"),
}
# Their configs.json keys that the workdir's config takes, and the choices their code has that nlvl-tf does not.
CONFIG_KEYS = (
    "task",
    "max_pos_len",
    "word_dim",
    "char_dim",
    "video_feature_dim",
    "dim",
    "num_heads",
    "drop_rate",
    "highlight_lambda",
    "predictor",
    "seed",
    "epochs",
    "batch_size",
    "init_lr",
    "clip_norm",
    "warmup_proportion",
)
SUPPORTED_CHOICES = {"predictor": ("rnn",)}


def read_authors_configs(path):
    """Their configs.json as a dict, refusing a missing key or a model choice nlvl-tf does not implement by name."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except json.JSONDecodeError as error:
        raise errors.InputError(f"{path}:{error.lineno}:{error.colno}: not a JSON file ({error.msg})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, "their configs.json", error) from None
    if not isinstance(values, dict):
        raise errors.InputError(
            f"{path}: expected their argparse namespace as a JSON object, got {type(values).__name__}"
        )
    missing = [key for key in CONFIG_KEYS if values.get(key) is None]
    if missing:
        raise errors.InputError(f"{path}: missing {', '.join(missing)} (their main_t7.py saves every argument)")
    for key, choices in SUPPORTED_CHOICES.items():
        if values[key] not in choices:
            raise errors.InputError(
                f"{path}: {key}={values[key]!r} is not implemented in nlvl-tf (only {', '.join(choices)})"
            )
    if (values["task"], values["video_feature_dim"]) not in DATASETS:
        known = ", ".join(f"task={task} with {dim}-d features" for task, dim in DATASETS)
        raise errors.InputError(
            f"{path}: task={values['task']!r} with video_feature_dim={values['video_feature_dim']} has no dataset in "
            f"nlvl-tf (known: {known})"
        )
    return values


def read_authors_dataset(path):
    """Their dataset pickle as a dict with at least `word_dict`, `char_dict` and `word_vector`."""
    try:
        with open(path, "rb") as f:
            dataset = pickle.load(f)
    except OSError as error:
        raise _unreadable(path, "their dataset pickle", error) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as error:
        raise errors.InputError(f"{path}: not a readable dataset pickle ({type(error).__name__}: {error})") from None
    if not isinstance(dataset, dict):
        raise errors.InputError(f"{path}: expected a dict (util/data_gen.py's dataset), got {type(dataset).__name__}")
    missing = [key for key in ("word_dict", "char_dict", "word_vector") if key not in dataset]
    if missing:
        raise errors.InputError(f"{path}: missing {', '.join(missing)}")
    return dataset


def _unreadable(path, what, error):
    """The user error for a file that cannot be opened or decoded: missing, unreadable, or not UTF-8 text."""
    if isinstance(error, FileNotFoundError):
        return errors.NotFoundError(f"{path}: no such file ({what})")
    return errors.InputError(f"{path}: cannot read {what} ({type(error).__name__}: {error})")


def entries_in_id_order(mapping, name, path):
    """The entries of ids 2, 3, ... of their {entry: id} dict, checking ids 0 and 1 are <PAD> and <UNK>, the ids
    contiguous, and every entry one line of a vocabulary file."""
    by_id = {index: entry for entry, index in mapping.items()}
    if sorted(by_id) != list(range(len(mapping))):
        raise errors.InputError(f"{path}: {name} ids are not 0 .. {len(mapping) - 1}")
    if by_id.get(text.PAD_ID) != AUTHORS_PAD or by_id.get(text.UNK_ID) != AUTHORS_UNK:
        raise errors.InputError(
            f"{path}: {name} maps ids 0 and 1 to {by_id.get(0)!r} and {by_id.get(1)!r}; their loader pads with id 0 "
            f"and maps unknown entries to <UNK>, so they must be {AUTHORS_PAD!r} and {AUTHORS_UNK!r}"
        )
    entries = [by_id[index] for index in range(text.FIRST_WORD_ID, len(by_id))]
    bad = [(index, entry) for index, entry in enumerate(entries, text.FIRST_WORD_ID) if not _one_line(entry)]
    if bad:
        raise errors.InputError(
            f"{path}: {name} entries that cannot be a line of a vocabulary file (id, entry): {bad[:5]}"
        )
    return tuple(entries)


def _one_line(entry):
    return isinstance(entry, str) and entry != "" and "\n" not in entry and "\r" not in entry


def longest_query_and_word(dataset, path):
    """(tokens, characters) of the longest query and word in the pickle's records, or None without records."""
    records = [record for key in ("train_set", "val_set", "test_set") for record in dataset.get(key) or ()]
    if not records:
        return None
    if not all(isinstance(record, dict) and "w_ids" in record and "c_ids" in record for record in records):
        raise errors.InputError(f"{path}: a record without w_ids and c_ids (util/data_gen.py writes both)")
    longest_query = max(len(record["w_ids"]) for record in records)
    return longest_query, max((len(chars) for record in records for chars in record["c_ids"]), default=0)


def workdir_config(authors, lengths=None, data_dir=""):
    """Our config of their run: `authors` is their configs.json, `lengths` (longest query, longest word) of the data.

    Queries keep their first max_pos_len tokens and words all their characters in the authors' code; M and W are
    set so that nlvl-tf cuts no query or word of the data (W = 16, the default, without `lengths`).
    """
    config = configs.base_config()
    dataset, builder_config = DATASETS[(authors["task"], authors["video_feature_dim"])]
    n = int(authors["max_pos_len"])
    config.variant = f"authors_{authors['task']}"
    config.seed = int(authors["seed"])
    config.data.update(
        dataset=dataset,
        dataset_config=builder_config,
        data_dir=data_dir,
        video_feature_dim=int(authors["video_feature_dim"]),
        max_video_len=n,
        highlight_extend=0.1,
        label_method="iou_argmax",
        resample_include_last=False,
    )
    if lengths is not None:
        longest_query, longest_word = lengths
        config.data.max_query_len = max(1, min(longest_query, n))
        config.data.max_word_len = max(longest_word, max(config.model.char_kernel_widths))
    else:
        config.data.max_query_len = n
    config.model.update(
        word_dim=int(authors["word_dim"]),
        char_dim=int(authors["char_dim"]),
        hidden_size=int(authors["dim"]),
        num_heads=int(authors["num_heads"]),
        max_position=n,
        video_feature_dim=int(authors["video_feature_dim"]),
        dropout=float(authors["drop_rate"]),
        highlight_lambda=float(authors["highlight_lambda"]),
        **authors_checkpoint.AUTHORS_MODEL,
    )
    config.train.update(
        batch_size=int(authors["batch_size"]),
        epochs=int(authors["epochs"]),
        learning_rate=float(authors["init_lr"]),
        clip_norm=float(authors["clip_norm"]),
        warmup_proportion=float(authors["warmup_proportion"]),
    )
    config.eval.batch_size = int(authors["batch_size"])
    configs.check(config)
    return config


def import_run(checkpoint_path, configs_path, dataset_path, workdir, data_dir=""):
    """Writes the workdir of an authors' run (see the module docstring); returns what authors_import.json records.

    Raises:
        ValueError naming the file and the entry or tensor at fault; nothing is written then.
    """
    if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
        raise errors.InputError(f"{workdir} exists and is not an empty directory: the import writes a new workdir")
    authors = read_authors_configs(configs_path)
    state = authors_checkpoint.read_state_dict(checkpoint_path)
    logging.info("read %d tensors from %s", len(state), checkpoint_path)
    dataset = read_authors_dataset(dataset_path)
    words = entries_in_id_order(dataset["word_dict"], "word_dict", dataset_path)
    chars = entries_in_id_order(dataset["char_dict"], "char_dict", dataset_path)
    for key, entries in (("word_size", words), ("char_size", chars)):
        if authors.get(key) is not None and authors[key] != len(entries) + 2:
            raise errors.InputError(
                f"{configs_path}: {key}={authors[key]}, but {dataset_path} has {len(entries) + 2} ids: the files come "
                "from different runs"
            )
    vectors = _word_vectors(dataset["word_vector"], state, len(words), dataset_path)
    lengths = longest_query_and_word(dataset, dataset_path)
    if lengths is None:
        logging.warning("%s holds no records: M = n and W = 16 (longer words are cut, theirs are not)", dataset_path)
    config = workdir_config(authors, lengths, data_dir)
    vocabulary = text.Vocabulary(words, chars, vectors)
    model = vslnet.build_model(config.model, vocabulary.num_words, vocabulary.num_chars, vocabulary.vectors)
    authors_checkpoint.load_into(model, state, checkpoint_path)
    step = authors_checkpoint.checkpoint_step(checkpoint_path)
    provenance = {
        "checkpoint": os.path.abspath(checkpoint_path),
        "configs": os.path.abspath(configs_path),
        "dataset": os.path.abspath(dataset_path),
        "step": step,
        "tensors": len(state),
        "words": vocabulary.num_words,
        "chars": vocabulary.num_chars,
    }
    _write_workdir(workdir, config, vocabulary, model, step, provenance)
    logging.info("wrote %s: VSLNet in the authors' padding, step %d", workdir, step)
    return provenance


def _word_vectors(pickled, state, num_words, dataset_path):
    """The pickle's GloVe rows (ids 2..), which must equal the checkpoint's frozen `glove_vec`."""
    vectors = np.asarray(pickled, np.float32)
    if vectors.shape[:1] != (num_words,) or vectors.ndim != 2:
        raise errors.InputError(
            f"{dataset_path}: word_vector has shape {list(vectors.shape)}, expected [{num_words}, dim]"
        )
    glove = state.get("embedding_net.word_emb.glove_vec")
    if glove is not None and glove.shape == vectors.shape and not np.array_equal(glove, vectors):
        raise errors.InputError(
            f"{dataset_path}: word_vector differs from the checkpoint's frozen embedding_net.word_emb.glove_vec: the "
            "files come from different runs"
        )
    return vectors


def _write_workdir(workdir, config, vocabulary, model, step, provenance):
    """Writes the workdir aside (`<workdir>.partial`) and renames it into place; a failure removes the partial one."""
    partial = f"{os.path.normpath(workdir)}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        with open(os.path.join(partial, workdir_lib.CONFIG_FILE), "w", encoding="utf-8") as f:
            f.write(config.to_json_best_effort(indent=2, sort_keys=True))
        vocabulary.save(os.path.join(partial, workdir_lib.VOCABULARY_DIR))
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model), os.path.join(partial, workdir_lib.BEST_DIR), max_to_keep=1
        )
        manager.save(checkpoint_number=step)
        with open(os.path.join(partial, PROVENANCE_FILE), "w", encoding="utf-8") as f:
            json.dump(provenance, f, indent=2)
        if os.path.isdir(workdir):
            os.rmdir(workdir)  # empty (checked first)
        os.replace(partial, workdir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
