"""Every variant of every experiment config loads and builds its model, so a typo in a paper config fails CI."""

import importlib.util
import pathlib

import pytest

from nlvl_tf import configs
from nlvl_tf.model import vslnet

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = [(path.name, variant) for path in sorted(CONFIG_DIR.glob("*.py")) for variant in _load(path).VARIANTS]


def test_every_dataset_has_a_config_file_with_a_smoke_variant():
    names = {path.stem for path in CONFIG_DIR.glob("*.py")}
    assert names == {"synthetic", "charades_sta", "activitynet_captions", "tacos"}
    assert all("smoke" in _load(CONFIG_DIR / f"{name}.py").VARIANTS for name in names)


@pytest.mark.parametrize("file_name, variant", CASES)
def test_variant_builds_its_model(file_name, variant):
    config = _load(CONFIG_DIR / file_name).get_config(variant)
    assert config.variant == variant
    config.video_feature_dim = config.video_feature_dim or 8
    config.hidden_size, config.num_heads = 16, 2  # the check is the config, not the width; keeps the test fast
    model = vslnet.build_model(config, vocabulary_size=3, num_chars=4)
    assert model.hyperparameters["max_position"] >= config.max_video_len
    if config.model == "vslnet_l":
        assert all(config.max_video_len % length == 0 for length in config.clip_lengths)


def test_unknown_variant_and_unknown_key_are_clear_errors():
    base = configs.base_config()
    with pytest.raises(ValueError, match="known variants: a"):
        configs.apply_variant(base, {"a": {}}, "b")
    with pytest.raises(ValueError, match=r"unknown config keys \['hiden_size'\]"):
        configs.apply_variant(configs.base_config(), {"a": {"hiden_size": 3}}, "a")
    locked = configs.apply_variant(configs.base_config(), {"a": {}}, "a")
    with pytest.raises(AttributeError, match="hiden_size"):
        locked.hiden_size = 3
