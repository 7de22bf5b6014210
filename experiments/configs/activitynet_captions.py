"""ActivityNet Captions, paper Table 4: train = train, validation = val_2, test = val_1 (the reported split).

Variants: vslbase, vslnet (n = 300), vslbase_n128, vslnet_n128 (the starred ACL-version rows), vslnet_l_pm,
vslnet_l_u (n = 300, scales 60/75/100/150; the two candidate selection strategies), vslnet_c3d (the official 500-d
C3D features). Add ",smoke" for a seconds-long run.
"""

from nlvl_tf import configs

_VSLNET_L = {"name": "vslnet_l", "clip_lengths": (60, 75, 100, 150)}
VARIANTS = {
    "vslbase": {"model": {"name": "vslbase"}},
    "vslnet": {"model": {"name": "vslnet"}},
    "vslbase_n128": {"model": {"name": "vslbase"}, "data": {"max_video_len": 128}},
    "vslnet_n128": {"model": {"name": "vslnet"}, "data": {"max_video_len": 128}},
    "vslnet_l_pm": {"model": _VSLNET_L, "eval": {"selection": "pm"}, "export": {"selection": "pm"}},
    "vslnet_l_u": {"model": _VSLNET_L, "eval": {"selection": "u"}, "export": {"selection": "u"}},
    "vslnet_c3d": {"model": {"name": "vslnet"}, "data": {"dataset_config": "c3d"}},
}


def get_config(arg="vslnet"):
    config = configs.base_config()
    # The longest caption has 91 tokens.
    config.data.update(dataset="activitynet_captions", dataset_config="i3d", max_video_len=300, max_query_len=100)
    return configs.finish(config, arg, VARIANTS, default_variant="vslnet")
