"""Ego4D NLQ (tfds_builders/ego4d_nlq): the official VSLNet baseline's settings, and VSLNet-L for the 8-minute clips.

Variants:
- slowfast, omnivore, egovlp: the baseline (EGO4D/episodic-memory NLQ/VSLNet README): VSLNet, n = 128, d = 128,
  8 heads, batch 32, 200 epochs, learning rate 1e-4 without warm-up, two evaluations per epoch, the best checkpoint
  by R1@0.3 on validation; one variant per feature family (2304-, 1536- and 256-d).
- vslnet_l: VSLNet-L on SlowFast features at n = 900 with scales 150/180/225/300 (docs/ego4d_nlq.md, "Configs").
Every variant reports validation with both conventions (ours and the Ego4D evaluator's) and writes the test split's
challenge file after training (W/eval/test/submission.json). Add ",smoke" for a seconds-long run.
"""

from nlvl_tf import configs

_BASELINE = {
    "model": {"name": "vslnet"},
    "data": {"max_video_len": 128},
    "train": {"batch_size": 32, "epochs": 200, "learning_rate": 1e-4, "selection_metric": "R1@0.3"},
}
VARIANTS = {
    family: {**_BASELINE, "data": {**_BASELINE["data"], "dataset_config": family}}
    for family in ("slowfast", "omnivore", "egovlp")
}
# An 8-minute clip has 480 s x 1.875 = 900 feature rows: n = 900 keeps every row (a position is 0.53 s; NLQ windows
# are a few seconds), and the scales are n/6 .. n/3 (80 to 160 s per clip), the ratios of the paper's TACoS scales.
VARIANTS["vslnet_l"] = {
    "model": {"name": "vslnet_l", "clip_lengths": (150, 180, 225, 300)},
    "data": {"max_video_len": 900, "dataset_config": "slowfast"},
    "train": {"batch_size": 16, "epochs": 100, "learning_rate": 1e-4, "selection_metric": "R1@0.3"},
}


def get_config(arg="slowfast"):
    config = configs.base_config()
    config.data.update(dataset="ego4d_nlq", dataset_config="slowfast")
    config.train.selection_split = "validation"
    config.eval.update(split="validation", ego4d_metric=True, submission_split="test")
    return configs.finish(config, arg, VARIANTS, default_variant="slowfast")
