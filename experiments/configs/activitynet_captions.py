"""ActivityNet Captions, paper Table 3: train = train, validation = val_2, test = val_1 (the reported split).

Variants: vslbase, vslnet (n = 300), vslbase_n128, vslnet_n128 (the starred ACL-version rows), vslnet_l_pm,
vslnet_l_u (n = 300, scales 60/75/100/150; the two candidate selection strategies), vslnet_c3d (the official 500-d
C3D features), smoke.
"""

from nlvl_tf import configs

_VSLNET_L = dict(model="vslnet_l", clip_lengths=(60, 75, 100, 150))
VARIANTS = {
    "vslbase": dict(model="vslbase"),
    "vslnet": dict(model="vslnet"),
    "vslbase_n128": dict(model="vslbase", max_video_len=128),
    "vslnet_n128": dict(model="vslnet", max_video_len=128),
    "vslnet_l_pm": dict(_VSLNET_L, vslnet_l_selection="pm"),
    "vslnet_l_u": dict(_VSLNET_L, vslnet_l_selection="u"),
    "vslnet_c3d": dict(model="vslnet", dataset_config="c3d"),
    "smoke": dict(model="vslnet", epochs=1, hidden_size=32, num_heads=4, max_video_len=60, batch_size=4),
}


def get_config(variant="vslnet"):
    config = configs.base_config()
    config.dataset, config.dataset_config = "activitynet_captions", "i3d"
    config.max_video_len = 300
    config.max_query_len = 100  # the longest caption has 91 tokens
    return configs.apply_variant(config, VARIANTS, variant)
