"""nlvl_synthetic (tfds_builders/nlvl_synthetic): the embedded default dataset, for the demo and tests.

Variants: vslbase, vslnet, vslnet_l (n = 300, scales 60/75/100/150), demo (the README's demo: minutes on a CPU).
Add ",smoke" for a run of about a minute that learns (the tests' run):
`--config=experiments/configs/synthetic.py:smoke`.
"""

from nlvl_tf import configs

# A model small enough to learn the synthetic set in minutes on a CPU.
_SMALL = {
    "model": {"hidden_size": 64, "num_heads": 4, "word_dim": 64, "char_dim": 16, "dropout": 0.1},
    "train": {"learning_rate": 1e-3, "warmup_proportion": 0.05, "batch_size": 32, "log_every_steps": 20},
}
VARIANTS = {
    "vslbase": {"model": {"name": "vslbase"}},
    "vslnet": {"model": {"name": "vslnet"}},
    "vslnet_l": {"model": {"name": "vslnet_l", "clip_lengths": (60, 75, 100, 150)}, "data": {"max_video_len": 300}},
    "demo": {
        "model": {"name": "vslnet", **_SMALL["model"]},
        "data": {"max_video_len": 128, "max_query_len": 16},
        "train": {**_SMALL["train"], "epochs": 20},
        "eval": {"batch_size": 128},
    },
}


def get_config(arg="vslnet"):
    config = configs.base_config()
    config.data.update(dataset="nlvl_synthetic", dataset_config="small")
    config = configs.finish(config, arg, VARIANTS, default_variant="vslnet")
    if configs.SMOKE in config.variant.split(","):
        config.train.epochs = 10  # the synthetic set needs 10 epochs of the smoke model to learn
    return config
