"""Charades-STA, paper Table 2 (n = 128, I3D features). No validation split: the best checkpoint is chosen on test,
the authors' protocol (logged as such); set --config.train.selection_split to change it.

Variants: vslbase, vslnet (Table 2 rows), vslnet_paper (the paper's text instead of the authors' code: no char CNN,
unprojected highlighting, linear heads, lambda_h = 1). Add ",smoke" for a seconds-long run, e.g. "vslnet,smoke".
"""

from nlvl_tf import configs

VARIANTS = {
    "vslbase": {"model": {"name": "vslbase"}},
    "vslnet": {"model": {"name": "vslnet"}},
    "vslnet_paper": {
        "model": {
            "name": "vslnet",
            "use_char_cnn": False,
            "highlight_projection": False,
            "predictor_head": "linear",
            "highlight_lambda": 1.0,
        },
        "data": {"label_method": "round"},
    },
}


def get_config(arg="vslnet"):
    config = configs.base_config()
    config.data.update(dataset="charades_sta", dataset_config="i3d", max_video_len=128)
    return configs.finish(config, arg, VARIANTS, default_variant="vslnet")
