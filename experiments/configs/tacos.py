"""TACoS, paper Tables 4 and 10: the 2D-TAN split ("tan", I3D) and the TALL split ("org", C3D 4096).

Variants (add `_org` for the TALL split): vslbase_s, vslnet_s (n = 300), vslbase_l, vslnet_l_len (n = 600),
vslnet_l_pm_s, vslnet_l_u_s (n = 300, scales 60/75/100/150), vslnet_l_pm, vslnet_l_u (n = 600, scales
100/120/150/200), single_100, single_120, single_150, single_200 (Table 10: VSLNet-L with one scale at n = 600),
smoke.
"""

from nlvl_tf import configs

_SCALES_300 = (60, 75, 100, 150)
_SCALES_600 = (100, 120, 150, 200)
_TAN = {
    "vslbase_s": dict(model="vslbase", max_video_len=300),
    "vslnet_s": dict(model="vslnet", max_video_len=300),
    "vslbase_l": dict(model="vslbase", max_video_len=600),
    "vslnet_l_len": dict(model="vslnet", max_video_len=600),
    "vslnet_l_pm_s": dict(model="vslnet_l", max_video_len=300, clip_lengths=_SCALES_300, vslnet_l_selection="pm"),
    "vslnet_l_u_s": dict(model="vslnet_l", max_video_len=300, clip_lengths=_SCALES_300, vslnet_l_selection="u"),
    "vslnet_l_pm": dict(model="vslnet_l", max_video_len=600, clip_lengths=_SCALES_600, vslnet_l_selection="pm"),
    "vslnet_l_u": dict(model="vslnet_l", max_video_len=600, clip_lengths=_SCALES_600, vslnet_l_selection="u"),
    **{f"single_{length}": dict(model="vslnet_l", max_video_len=600, clip_lengths=(length,)) for length in _SCALES_600},
}
VARIANTS = {
    **_TAN,
    **{f"{name}_org": dict(values, dataset_config="org") for name, values in _TAN.items()},
    "smoke": dict(
        model="vslnet_l", epochs=1, hidden_size=32, num_heads=4, max_video_len=60, clip_lengths=(20, 30), batch_size=4
    ),
}


def get_config(variant="vslnet_s"):
    config = configs.base_config()
    config.dataset, config.dataset_config = "tacos", "tan"
    return configs.apply_variant(config, VARIANTS, variant)
