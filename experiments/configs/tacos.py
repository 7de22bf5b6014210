"""TACoS, paper Tables 3 and 10: the 2D-TAN split ("tan", I3D) and the TALL split ("org", C3D 4096).

Variants (add `_org` for the TALL split): vslbase_s, vslnet_s (n = 300), vslbase_l, vslnet_l_len (n = 600),
vslnet_l_pm_s, vslnet_l_u_s (n = 300, scales 60/75/100/150), vslnet_l_pm, vslnet_l_u (n = 600, scales
100/120/150/200), single_100, single_120, single_150, single_200 (Table 10: VSLNet-L with one scale at n = 600).
Add ",smoke" for a seconds-long run.
"""

from nlvl_tf import configs

_SCALES_300 = (60, 75, 100, 150)
_SCALES_600 = (100, 120, 150, 200)


def _vslnet_l(n, clip_lengths, selection="pm"):
    return {
        "model": {"name": "vslnet_l", "clip_lengths": clip_lengths},
        "data": {"max_video_len": n},
        "eval": {"selection": selection},
        "export": {"selection": selection},
    }


_TAN = {
    "vslbase_s": {"model": {"name": "vslbase"}, "data": {"max_video_len": 300}},
    "vslnet_s": {"model": {"name": "vslnet"}, "data": {"max_video_len": 300}},
    "vslbase_l": {"model": {"name": "vslbase"}, "data": {"max_video_len": 600}},
    "vslnet_l_len": {"model": {"name": "vslnet"}, "data": {"max_video_len": 600}},
    "vslnet_l_pm_s": _vslnet_l(300, _SCALES_300, "pm"),
    "vslnet_l_u_s": _vslnet_l(300, _SCALES_300, "u"),
    "vslnet_l_pm": _vslnet_l(600, _SCALES_600, "pm"),
    "vslnet_l_u": _vslnet_l(600, _SCALES_600, "u"),
    **{f"single_{length}": _vslnet_l(600, (length,)) for length in _SCALES_600},
}
VARIANTS = {
    **_TAN,
    **{f"{name}_org": {**values, "data": {**values["data"], "dataset_config": "org"}} for name, values in _TAN.items()},
}


def get_config(arg="vslnet_s"):
    config = configs.base_config()
    config.data.update(dataset="tacos", dataset_config="tan")
    return configs.finish(config, arg, VARIANTS, default_variant="vslnet_s")
