"""nlvl_synthetic (tfds_builders/nlvl_synthetic): the embedded default dataset, for the demo and tests.

Variants: vslbase, vslnet, vslnet_l (n = 300, scales 60/75/100/150), smoke (seconds on a CPU), demo (the README's
demo: minutes on a CPU). Use as `--config=experiments/configs/synthetic.py:smoke`.
"""

from nlvl_tf import configs

_SMALL_MODEL = dict(
    hidden_size=64,
    num_heads=4,
    word_dim=64,
    char_dim=16,
    dropout=0.1,
    learning_rate=1e-3,
    warmup_proportion=0.05,
    batch_size=32,
    eval_batch_size=128,
    log_every_steps=20,
)
VARIANTS = {
    "vslbase": dict(model="vslbase"),
    "vslnet": dict(model="vslnet"),
    "vslnet_l": dict(model="vslnet_l", max_video_len=300, clip_lengths=(60, 75, 100, 150)),
    "smoke": dict(
        model="vslnet",
        max_video_len=64,
        max_query_len=16,
        epochs=10,
        evals_per_epoch=1,
        **dict(_SMALL_MODEL, learning_rate=2e-3),
    ),
    "demo": dict(model="vslnet", max_video_len=128, max_query_len=16, epochs=20, **_SMALL_MODEL),
}


def get_config(variant="vslnet"):
    config = configs.base_config()
    config.dataset, config.dataset_config = "nlvl_synthetic", "small"
    return configs.apply_variant(config, VARIANTS, variant)
