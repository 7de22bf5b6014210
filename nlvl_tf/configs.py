"""The one experiment config every entry point reads: data, model and training keys with the paper's defaults.

Config files in experiments/configs/ start from `base_config()` and change what their paper table row changes.
Every key is listed here, so a misspelt `--config.key=value` override is an error that names the key.
"""

import ml_collections


def base_config():
    """The authors' settings (reference_spec.md sections 1-5) on the synthetic dataset."""
    c = ml_collections.ConfigDict()
    c.variant = ""  # the config file variant (paper table row) this config was made for

    # Data: a built TFDS dataset (`tfds build tfds_builders/<dataset> --config=<dataset_config>`).
    c.dataset = "nlvl_synthetic"
    c.dataset_config = "small"
    c.data_dir = ""  # TFDS data dir; "" = TFDS's default (~/tensorflow_datasets)
    c.train_split = "train"
    c.eval_split = "test"  # the split whose metrics are reported
    c.selection_split = ""  # the split that picks the best checkpoint: "" = "validation" if present, else eval_split
    c.video_feature_dim = 0  # 0 = read from the dataset; otherwise checked against it
    c.max_video_len = 128  # n: features are resampled to at most n rows
    c.max_query_len = 64  # M: tokens kept per query
    c.max_word_len = 16  # W: characters kept per token
    c.highlight_extend = 0.1  # alpha of the highlighting labels
    c.label_method = "iou_argmax"  # time -> index: "iou_argmax" (authors) or "round" (paper)
    c.resample_include_last = True  # False = the authors' resampling that drops the last raw feature
    c.skip_invalid_moments = True  # training skips start >= end records (kept in evaluation)
    c.drop_remainder = True
    c.length_bucketing = False
    c.vocabulary_splits = "all"  # "all" (authors) or "train"
    c.word_vectors_path = ""  # GloVe / word2vec / KeyedVectors file; "" = Word2Vec trained on the training queries
    c.word_vectors_format = "auto"
    c.word_vectors_cache_dir = ""
    c.min_char_count = 5

    # Model (nlvl_tf.models).
    c.model = "vslnet"  # vslbase | vslnet | vslnet_l
    c.word_dim = 300
    c.hidden_size = 128
    c.num_heads = 8
    c.kernel_size = 7
    c.num_conv_layers = 4
    c.max_position = 0  # 0 = max(max_video_len, max_query_len)
    c.dropout = 0.2
    c.use_char_cnn = True
    c.char_dim = 50
    c.char_kernel_widths = (1, 2, 3, 4)
    c.char_filters = (10, 20, 30, 40)
    c.encoder_type = "cmf"  # cmf | bilstm (paper Table 8)
    c.attention_type = "cqa"  # cqa | cat (paper Table 8)
    c.highlight_projection = True
    c.predictor_head = "mlp"  # mlp (authors) | linear (paper)
    c.highlight_lambda = 5.0
    c.positive_weight = 2.0
    c.clip_lengths = (100, 120, 150, 200)  # VSLNet-L scales
    c.nil_lambda = 1.0

    # Training (nlvl_tf.training).
    c.batch_size = 16  # global
    c.eval_batch_size = 64
    c.epochs = 100
    c.learning_rate = 1e-4
    c.warmup_proportion = 0.0
    c.weight_decay = 0.01
    c.adam_epsilon = 1e-6
    c.clip_norm = 1.0  # global-norm clipping
    c.evals_per_epoch = 2
    c.selection_metric = "R1@0.7"
    c.vslnet_l_selection = "pm"  # pm | u: the VSLNet-L strategy whose metric picks the best checkpoint
    c.patience = 0  # evaluations without improvement before stopping; 0 = never stop early (authors)
    c.max_checkpoints = 2
    c.strategy = "default"  # default | mirrored | multi_worker
    c.num_cpu_replicas = 2  # mirrored on a machine without GPUs: logical CPU devices to spread over
    c.multi_worker_connect_timeout = 600.0  # seconds for every worker of the cluster to start and connect
    c.multi_worker_heartbeat_timeout = 30.0  # seconds without a heartbeat before a worker counts as lost
    c.xla = "auto"  # auto (on with GPUs, off on CPU) | true | false
    c.mixed_precision = ""  # "" | mixed_float16 | mixed_bfloat16
    c.seed = 12345
    c.deterministic = False  # op determinism (slower); bit-identical reruns on CPU
    c.top_k = 5
    c.log_every_steps = 50
    return c


def apply_variant(config, variants, variant):
    """Applies the overrides of `variants[variant]` to `config`; an unknown variant is an error listing the known."""
    if variant not in variants:
        raise ValueError(f"unknown config variant {variant!r}; known variants: {', '.join(sorted(variants))}")
    unknown = sorted(set(variants[variant]) - set(config.keys()))
    if unknown:
        raise ValueError(f"variant {variant!r} sets unknown config keys {unknown}")
    config.update(variants[variant])
    config.variant = variant
    config.lock()  # overrides of keys that do not exist are errors that name the key
    return config
