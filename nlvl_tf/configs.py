"""The experiment config: one nested tree, defined once here with a line of meaning per key.

    config.seed     seeds Python, numpy, TensorFlow and Keras; every epoch's batch order derives from it
    config.data     what the input pipeline reads: the TFDS dataset, lengths, labels, vocabulary
    config.model    the model's constructor arguments (`vslnet.build_model` passes them as **config.model)
    config.train    the loop: batch size, schedule, optimizer, checkpoint selection, runtime (strategy, XLA, precision)
    config.eval     the reported split, its batch size, top-k and the VSLNet-L candidate selection
    config.export   what export.py writes by default: top-k, the candidate selection, the LSTM loop's compilation

Config files in experiments/configs/ start from `base_config()`, apply a variant (a row of the paper's tables) and,
when their argument ends in ",smoke", `make_smoke` (a seconds-long CPU run). `parse_arg` reads that argument. The
config is locked afterwards, so a misspelt `--config.model.hiden_size=3` is an error that names the key.

Workdirs written before the nested tree hold a flat config.json; `from_flat` maps it (`workdir.load_config` does so
when it finds one).
"""

import importlib.util

import ml_collections

from nlvl_tf import errors

# (key, default, meaning) per section. `base_config` builds the tree from these and `describe` prints them.
SCHEMA = {
    "data": (
        ("dataset", "nlvl_synthetic", "TFDS dataset name (built with `tfds build tfds_builders/<dataset>`)"),
        ("dataset_config", "small", "its builder config (e.g. i3d, c3d, tan, org, small, large)"),
        ("data_dir", "", "TFDS data dir; empty: TFDS's default (~/tensorflow_datasets)"),
        ("train_split", "train", "the split trained on (its queries also train Word2Vec when no vectors file)"),
        ("video_feature_dim", 0, "D of the features; 0: read from the dataset, else checked against it"),
        ("max_video_len", 128, "n: each video's features are resampled to at most n rows"),
        ("max_query_len", 64, "M: tokens kept per query"),
        ("max_word_len", 16, "W: characters kept per token"),
        ("highlight_extend", 0.1, "alpha: the highlighting labels cover the moment extended by this share"),
        ("label_method", "iou_argmax", "time -> index: iou_argmax (the authors' code) or round (the paper)"),
        ("resample_include_last", True, "False: the authors' resampling, which drops the last raw feature row"),
        ("skip_invalid_moments", True, "training skips records whose moment is empty after clipping"),
        ("min_train_moment_seconds", 0.0, "training keeps only moments longer than this (Ego4D baseline: 1/30)"),
        ("drop_remainder", True, "training drops the last partial batch"),
        ("length_bucketing", False, "pad batches to n/4, n/2 or n by video length (not for vslnet_l)"),
        ("vocabulary_splits", "all", "queries counted for the vocabulary: all splits (the authors) or train"),
        ("word_vectors_path", "", "GloVe / word2vec / KeyedVectors file; empty: Word2Vec on the training queries"),
        ("word_vectors_format", "auto", "auto, glove, word2vec, word2vec_binary or keyedvectors"),
        ("word_vectors_cache_dir", "", "where the vectors of the vocabulary's words are cached; empty: ~/.cache"),
        ("min_char_count", 5, "characters seen fewer times are UNK"),
    ),
    "model": (
        ("name", "vslnet", "vslbase, vslnet or vslnet_l"),
        ("word_dim", 300, "word vector size (300 for GloVe; the Word2Vec size when no vectors file)"),
        ("hidden_size", 128, "d, the model width"),
        ("num_heads", 8, "self-attention heads of the feature encoder"),
        ("kernel_size", 7, "depthwise convolution width of the feature encoder"),
        ("num_conv_layers", 4, "convolution layers of the feature encoder"),
        ("max_position", 0, "positional table size; 0: max(n, M), filled in when training starts"),
        ("video_feature_dim", 0, "D; 0: filled in from the dataset when training starts"),
        ("dropout", 0.2, "dropout rate everywhere"),
        ("use_char_cnn", True, "add the authors' character CNN to the word vectors (the paper has none)"),
        ("char_dim", 50, "character embedding size"),
        ("char_kernel_widths", (1, 2, 3, 4), "character CNN kernel widths"),
        ("char_filters", (10, 20, 30, 40), "character CNN filters per width"),
        ("encoder_type", "cmf", "cmf (conv + attention + feed-forward) or bilstm (paper Table 8)"),
        ("attention_type", "cqa", "cqa (context-query attention) or cat (paper Table 8)"),
        ("highlight_projection", True, "project [v; h_Q] to d before highlighting (the authors; the paper: no)"),
        ("predictor_head", "mlp", "span predictor head: mlp (the authors) or linear (the paper)"),
        ("highlight_lambda", 5.0, "weight of the highlighting loss (the authors 5, the paper 1)"),
        ("positive_weight", 2.0, "weight of positive positions in the highlighting and nil losses"),
        (
            "padding_semantics",
            "invariant",
            "invariant (outputs never depend on padding) or authors (their code: the encoder's convolutions and the "
            "char CNN see the batch's padded slots; not for vslnet_l)",
        ),
        (
            "cqa_output_bias",
            False,
            "a bias in CQA's output projection (the authors' PyTorch port; their TF code: none)",
        ),
    ),
    "train": (
        ("batch_size", 16, "global training batch size"),
        ("epochs", 100, "training epochs"),
        ("learning_rate", 1e-4, "peak learning rate of the warmup + linear decay schedule"),
        ("warmup_proportion", 0.0, "share of the steps spent warming up"),
        ("weight_decay", 0.01, "AdamW weight decay (not on LayerNorm parameters and biases)"),
        ("adam_epsilon", 1e-6, "AdamW epsilon"),
        ("clip_norm", 1.0, "global-norm gradient clipping; 0: none"),
        ("evals_per_epoch", 2, "evaluations of the selection split per epoch"),
        ("selection_split", "", "the split that picks the best checkpoint; empty: validation if any, else eval.split"),
        ("selection_metric", "R1@0.7", "the metric that picks the best checkpoint"),
        ("patience", 0, "evaluations without improvement before stopping early; 0: never"),
        ("max_checkpoints", 2, "latest checkpoints kept for resuming"),
        ("strategy", "default", "default, mirrored or multi_worker"),
        ("num_cpu_replicas", 2, "mirrored without GPUs: logical CPU devices to spread over"),
        ("multi_worker_connect_timeout", 600.0, "seconds for every worker of the cluster to connect"),
        ("multi_worker_heartbeat_timeout", 30.0, "seconds without a heartbeat before a worker counts as lost"),
        ("xla", "auto", "XLA-compile the step: auto (with GPUs only), true or false"),
        ("mixed_precision", "", "empty (float32), mixed_float16 or mixed_bfloat16"),
        ("deterministic", False, "op determinism (slower): bit-identical reruns on CPU"),
        ("log_every_steps", 50, "TensorBoard scalars every this many steps"),
    ),
    "eval": (
        ("split", "test", "the split whose metrics are reported"),
        ("batch_size", 64, "evaluation batch size"),
        ("top_k", 5, "ranked moments kept per query"),
        ("selection", "pm", "VSLNet-L candidate selection reported and used to pick checkpoints: pm or u"),
        ("iou_rule", ">=", "Rank@k hit: >= (IoU >= mu, the authors' code) or > (IoU > mu, Ego4D); docs/metrics.md"),
        ("ego4d_metric", False, "also score with the Ego4D NLQ evaluator's rules (ego4d_metrics.json)"),
        ("submission_split", "", "after training, predict this split into an Ego4D challenge submission.json"),
    ),
    "export": (
        ("top_k", 5, "moments the SavedModel returns per query"),
        ("selection", "pm", "VSLNet-L candidate selection of the SavedModel: pm or u"),
        (
            "xla_loop",
            False,
            "XLA-compile the SavedModel's LSTM loops (faster; the server must run XLA, see serving.md)",
        ),
    ),
}
# Model keys that only VSLNet-L takes; its variants add them to config.model.
VSLNET_L_SCHEMA = (
    ("clip_lengths", (100, 120, 150, 200), "VSLNet-L scales: clip lengths, each dividing n"),
    ("nil_lambda", 1.0, "weight of the nil prediction loss"),
)
MODEL_NAMES = ("vslbase", "vslnet", "vslnet_l")
# How the layers treat padded positions (`model.layers.masking`, docs/model.md 9).
PADDING_SEMANTICS = ("invariant", "authors")
IOU_RULES = (">=", ">")  # the Rank@k hit tests of nlvl_tf.eval.metrics
SMOKE = "smoke"
# Flat keys of workdirs written before the nested tree whose names changed; the rest kept their names.
_RENAMED_FLAT_KEYS = {
    "model": ("model", "name"),
    "eval_split": ("eval", "split"),
    "eval_batch_size": ("eval", "batch_size"),
    "top_k": ("eval", "top_k"),
    "vslnet_l_selection": ("eval", "selection"),
}
_TUPLE_KEYS = ("char_kernel_widths", "char_filters", "clip_lengths")


def base_config():
    """The authors' settings on the synthetic dataset; config files change what their paper table row changes."""
    config = ml_collections.ConfigDict()
    config.variant = ""  # the config file argument this config was made from, e.g. "vslnet,smoke"
    config.seed = 12345
    for section, entries in SCHEMA.items():
        config[section] = ml_collections.ConfigDict({key: default for key, default, _ in entries})
    return config


def parse_arg(arg, default_variant):
    """`"vslnet"`, `"vslnet,smoke"` or `"smoke"` -> (variant, smoke: bool)."""
    parts = [part.strip() for part in (arg or "").split(",") if part.strip()]
    smoke = SMOKE in parts
    variants = [part for part in parts if part != SMOKE]
    if len(variants) > 1:
        raise errors.InputError(f"config argument {arg!r}: one variant (and optionally ',smoke'), got {variants}")
    return (variants[0] if variants else default_variant), smoke


def apply_variant(config, variants, variant):
    """Applies `variants[variant]`, a {section: {key: value}} dict, to `config`.

    Raises:
        ValueError: an unknown variant (listing the known ones) or a key the sections do not have.
    """
    if variant not in variants:
        raise errors.InputError(f"unknown config variant {variant!r}; known variants: {', '.join(sorted(variants))}")
    overrides = variants[variant]
    model_name = overrides.get("model", {}).get("name", config.model.name)
    for section, values in overrides.items():
        if section not in SCHEMA:
            raise errors.InputError(f"variant {variant!r} sets unknown config section {section!r}")
        allowed = set(config[section].keys())
        if section == "model" and model_name == "vslnet_l":
            allowed |= {key for key, _, _ in VSLNET_L_SCHEMA}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise errors.InputError(
                f"variant {variant!r} sets unknown config keys {[f'{section}.{k}' for k in unknown]}"
            )
    if model_name == "vslnet_l":
        for key, default, _ in VSLNET_L_SCHEMA:
            if key not in config.model:
                config.model[key] = default
    for section, values in overrides.items():
        config[section].update(values)
    return config


def make_smoke(config):
    """Shrinks a config to a seconds-long CPU run of the same model family: a small model, short sequences, one
    epoch. Config files apply it when their argument ends in ",smoke" (and may then raise `train.epochs`)."""
    config.model.update(hidden_size=64, num_heads=4, word_dim=64, char_dim=16, dropout=0.1)
    config.data.max_query_len = min(config.data.max_query_len, 16)
    if config.model.name == "vslnet_l":
        config.data.max_video_len = 60
        config.model.clip_lengths = (20, 30)
    else:
        config.data.max_video_len = min(config.data.max_video_len, 64)
    config.train.update(
        epochs=1, batch_size=32, learning_rate=2e-3, warmup_proportion=0.05, evals_per_epoch=1, log_every_steps=20
    )
    config.eval.batch_size = 128
    return config


def finish(config, arg, variants, default_variant):
    """The tail of every config file's `get_config(arg)`: variant, optional smoke, then lock."""
    variant, smoke = parse_arg(arg, default_variant)
    apply_variant(config, variants, variant)
    if smoke:
        make_smoke(config)
    config.variant = variant + (f",{SMOKE}" if smoke else "")
    check(config)
    config.lock()  # overrides of keys that do not exist are errors that name the key
    return config


def check(config):
    """Refuses combinations no run can use, naming the keys."""
    if config.model.name not in MODEL_NAMES:
        raise errors.InputError(f"config.model.name must be one of {MODEL_NAMES}, got {config.model.name!r}")
    if config.model.padding_semantics not in PADDING_SEMANTICS:
        raise errors.InputError(
            f"config.model.padding_semantics must be one of {PADDING_SEMANTICS}, got {config.model.padding_semantics!r}"
        )
    if config.model.name == "vslnet_l":
        if config.model.padding_semantics != "invariant":
            raise errors.InputError(
                "config.model.padding_semantics=authors is not available for vslnet_l (no authors' code)"
            )
        if config.data.length_bucketing:
            raise errors.InputError("config.data.length_bucketing is not available for vslnet_l (it needs exactly n)")
        lengths = tuple(config.model.get("clip_lengths", ()))
        bad = [length for length in lengths if config.data.max_video_len % length]
        if not lengths or bad:
            raise errors.InputError(
                f"config.model.clip_lengths {lengths} must each divide config.data.max_video_len="
                f"{config.data.max_video_len}"
            )
    for section, key in (("eval", "selection"), ("export", "selection")):
        if config[section][key] not in ("pm", "u"):
            raise errors.InputError(f"config.{section}.{key} must be pm or u, got {config[section][key]!r}")
    if config.eval.iou_rule not in IOU_RULES:
        raise errors.InputError(f"config.eval.iou_rule must be one of {IOU_RULES}, got {config.eval.iou_rule!r}")


def resolve(config, video_feature_dim):
    """Fills the values a run derives from its data: the feature dimension (checked against a configured one) and
    the positional table size. Called once when training starts; the result is what config.json records."""
    configured = config.data.video_feature_dim or config.model.video_feature_dim
    if configured and configured != video_feature_dim:
        raise errors.InputError(
            f"config.data.video_feature_dim={configured} but dataset {config.data.dataset}/"
            f"{config.data.dataset_config} has {video_feature_dim}-d features"
        )
    config.data.video_feature_dim = config.model.video_feature_dim = int(video_feature_dim)
    if not config.model.max_position:
        config.model.max_position = max(config.data.max_video_len, config.data.max_query_len)
    check(config)
    return config


def from_flat(values):
    """A nested config from the flat dict of a config.json written before the nested tree (nlvl-tf 0.1)."""
    config = base_config()
    # Flat names shared by two sections go to the last listed: video_feature_dim to data (copied to model below).
    names = {key: (section, key) for section in ("train", "model", "data") for key, _, _ in SCHEMA[section]}
    names.update(_RENAMED_FLAT_KEYS)
    names.update({key: ("model", key) for key, _, _ in VSLNET_L_SCHEMA})
    names.update({"seed": (None, "seed"), "variant": (None, "variant")})
    for key, value in values.items():
        if key not in names:
            raise errors.InputError(f"flat config has an unknown key {key!r}")
        section, name = names[key]
        value = tuple(value) if name in _TUPLE_KEYS else value
        if section is None:
            config[name] = value
        elif section == "model" and name in {k for k, _, _ in VSLNET_L_SCHEMA}:
            if values.get("model") == "vslnet_l":
                config.model[name] = value
        else:
            config[section][name] = value
    config.model.video_feature_dim = config.data.video_feature_dim
    if not config.model.max_position:  # 0.1 resolved it when building the model
        config.model.max_position = max(config.data.max_video_len, config.data.max_query_len)
    config.export.selection = config.eval.selection
    config.export.top_k = config.eval.top_k
    return config


def from_saved(values):
    """The config of a config.json: the nested tree over the current defaults (keys added since keep their
    default), or a flat one of nlvl-tf 0.1 mapped by `from_flat`."""
    if not isinstance(values, dict):
        raise errors.InputError(f"a saved config is a JSON object, got {type(values).__name__}")
    if "data" not in values:
        return from_flat(values)
    config = base_config()
    for key, value in values.items():
        if key in SCHEMA:
            if not isinstance(value, dict):
                raise errors.InputError(f"config section {key!r} must be an object, got {value!r}")
            unknown = set(value) - set(config[key].keys()) - {k for k, _, _ in VSLNET_L_SCHEMA}
            if unknown:
                raise errors.InputError(f"config section {key!r} has unknown keys {sorted(unknown)}")
            for name, item in value.items():
                config[key][name] = tuple(item) if name in _TUPLE_KEYS else item
        elif key in ("seed", "variant"):
            config[key] = value
        else:
            raise errors.InputError(f"unknown config key {key!r}")
    return config


def describe_file(path=None, config=None):
    """A config file's docstring (its variants) and `describe(config)`; without a file, the base config's keys."""
    if path is None:
        return describe()
    path = path.split(":", 1)[0]
    spec = importlib.util.spec_from_file_location("config_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    variants = ", ".join(getattr(module, "VARIANTS", {}))
    header = f"{path}\n{(module.__doc__ or '').strip()}\n\nvariants: {variants} (add ,smoke to any)\n"
    return f"{header}\nkeys of {config.variant!r}:\n{describe(config)}"


def describe(config=None):
    """Every key with its value (default, or `config`'s) and meaning, one per line, for `--list_config`."""
    config = config or base_config()
    lines = [f"seed = {config.seed!r}: seeds Python, numpy, TensorFlow and Keras"]
    for section, entries in SCHEMA.items():
        lines.append(f"{section}:")
        for key, _, meaning in entries:
            lines.append(f"  {section}.{key} = {config[section].get(key)!r}: {meaning}")
        if section == "model":
            for key, default, meaning in VSLNET_L_SCHEMA:
                value = config.model.get(key, default)
                lines.append(f"  model.{key} = {value!r}: {meaning} (vslnet_l only)")
    return "\n".join(lines)
