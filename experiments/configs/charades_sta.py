"""Charades-STA, paper Table 2 (n = 128, I3D features). No validation split: the best checkpoint is chosen on test,
the authors' protocol (logged as such); set --config.selection_split to change it.

Variants: vslbase, vslnet (Table 2 rows), vslnet_paper (the paper's text instead of the authors' code: no char CNN,
unprojected highlighting, linear heads, lambda_h = 1), smoke.
"""

from nlvl_tf import configs

VARIANTS = {
    "vslbase": dict(model="vslbase"),
    "vslnet": dict(model="vslnet"),
    "vslnet_paper": dict(
        model="vslnet",
        use_char_cnn=False,
        highlight_projection=False,
        predictor_head="linear",
        highlight_lambda=1.0,
        label_method="round",
    ),
    "smoke": dict(model="vslnet", epochs=1, hidden_size=32, num_heads=4, max_video_len=32, batch_size=4),
}


def get_config(variant="vslnet"):
    config = configs.base_config()
    config.dataset, config.dataset_config = "charades_sta", "i3d"
    config.max_video_len = 128
    return configs.apply_variant(config, VARIANTS, variant)
