"""The nested config: every variant of every config file (and its smoke form) resolves and each distinct model config
builds its model; overrides and variants name unknown keys; flat config.json files of nlvl-tf 0.1 map onto the tree."""

import importlib.util
import json
import pathlib

import pytest

from nlvl_tf import configs
from nlvl_tf.model import vslnet

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "experiments" / "configs"
FIXTURES = REPO / "tests" / "fixtures"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = [
    (path.name, variant + smoke)
    for path in sorted(CONFIG_DIR.glob("*.py"))
    for variant in _load(path).VARIANTS
    for smoke in ("", ",smoke")
]


def test_every_dataset_has_a_config_file():
    assert {path.stem for path in CONFIG_DIR.glob("*.py")} >= {
        "synthetic",
        "charades_sta",
        "activitynet_captions",
        "tacos",
    }


def _resolved(file_name, arg):
    """The variant's config resolved for 8-d features, narrowed (the checks are the config, not the width: fast)."""
    config = _load(CONFIG_DIR / file_name).get_config(arg)
    configs.resolve(config, video_feature_dim=8)
    config.model.hidden_size, config.model.num_heads = 16, 2
    return config


def _one_case_per_model():
    """The first case of each distinct (model config, n): most variants differ from another only outside the model."""
    first = {}
    for file_name, arg in CASES:
        config = _resolved(file_name, arg)
        key = json.dumps([config.model.to_dict(), config.data.max_video_len], sort_keys=True, default=str)
        first.setdefault(key, (file_name, arg))
    return list(first.values())


@pytest.mark.parametrize("file_name, arg", CASES)
def test_variant_resolves_to_a_consistent_config(file_name, arg):
    config = _resolved(file_name, arg)
    assert config.variant == arg and config.model.name in vslnet.MODELS
    if config.model.name == "vslnet_l":
        assert all(config.data.max_video_len % length == 0 for length in config.model.clip_lengths)


@pytest.mark.parametrize("file_name, arg", _one_case_per_model())
def test_each_distinct_model_config_builds_its_model(file_name, arg):
    config = _resolved(file_name, arg)
    model = vslnet.build_model(config.model, vocabulary_size=5, num_chars=4)
    assert type(model) is vslnet.MODELS[config.model.name]
    assert model.hyperparameters["max_position"] >= config.data.max_video_len


def test_smoke_is_one_modifier_that_shrinks_any_variant():
    tacos = _load(CONFIG_DIR / "tacos.py")
    full, smoke = tacos.get_config("vslnet_l_pm"), tacos.get_config("vslnet_l_pm,smoke")
    assert (full.data.max_video_len, full.model.hidden_size, full.train.epochs) == (600, 128, 100)
    assert (smoke.data.max_video_len, smoke.model.clip_lengths, smoke.model.hidden_size, smoke.train.epochs) == (
        60,
        (20, 30),
        64,
        1,
    )
    assert smoke.eval.selection == full.eval.selection == "pm"
    assert _load(CONFIG_DIR / "synthetic.py").get_config("smoke").train.epochs == 10  # the synthetic set needs 10


def test_unknown_variant_key_and_section_are_clear_errors():
    with pytest.raises(ValueError, match="known variants: a"):
        configs.apply_variant(configs.base_config(), {"a": {}}, "b")
    with pytest.raises(ValueError, match=r"unknown config keys \['model.hiden_size'\]"):
        configs.apply_variant(configs.base_config(), {"a": {"model": {"hiden_size": 3}}}, "a")
    with pytest.raises(ValueError, match="unknown config section 'modle'"):
        configs.apply_variant(configs.base_config(), {"a": {"modle": {}}}, "a")
    with pytest.raises(ValueError, match=r"config.model.clip_lengths \(7,\) must each divide"):
        configs.finish(configs.base_config(), "a", {"a": {"model": {"name": "vslnet_l", "clip_lengths": (7,)}}}, "a")
    with pytest.raises(ValueError, match=r"padding_semantics must be one of \('invariant', 'authors'\), got 'pytorch'"):
        configs.finish(configs.base_config(), "a", {"a": {"model": {"padding_semantics": "pytorch"}}}, "a")
    with pytest.raises(ValueError, match="padding_semantics=authors is not available for vslnet_l"):
        variant = {"model": {"name": "vslnet_l", "clip_lengths": (64,), "padding_semantics": "authors"}}
        configs.finish(configs.base_config(), "a", {"a": variant}, "a")
    with pytest.raises(ValueError, match=r"config.eval.iou_rule must be one of \('>=', '>'\), got '=>'"):
        configs.finish(configs.base_config(), "a", {"a": {"eval": {"iou_rule": "=>"}}}, "a")
    locked = configs.finish(configs.base_config(), "a", {"a": {}}, "a")
    with pytest.raises(AttributeError, match="hiden_size"):
        locked.model.hiden_size = 3


def test_resolve_fills_and_checks_the_data_derived_sizes():
    config = configs.base_config()
    configs.resolve(config, video_feature_dim=32)
    assert (config.data.video_feature_dim, config.model.video_feature_dim, config.model.max_position) == (32, 32, 128)
    config.data.video_feature_dim = 1024
    with pytest.raises(ValueError, match="video_feature_dim=1024 but dataset nlvl_synthetic/small has 32-d"):
        configs.resolve(config, video_feature_dim=32)


@pytest.mark.parametrize("fixture", ["flat_config_workdir", "flat_config_workdir_vslnet_l"])
def test_a_flat_config_of_version_0_1_maps_onto_the_tree(fixture):
    flat = json.loads((FIXTURES / fixture / "config.json").read_text())
    config = configs.from_saved(flat)
    assert config.model.name == flat["model"] and config.eval.split == flat["eval_split"]
    assert (config.train.batch_size, config.eval.batch_size) == (flat["batch_size"], flat["eval_batch_size"])
    assert config.data.video_feature_dim == config.model.video_feature_dim == flat["video_feature_dim"]
    assert config.model.hidden_size == flat["hidden_size"] and config.eval.selection == flat["vslnet_l_selection"]
    assert config.model.max_position == max(flat["max_video_len"], flat["max_query_len"])
    assert ("clip_lengths" in config.model) == (flat["model"] == "vslnet_l")
    assert configs.from_saved(json.loads(config.to_json())) == config  # a nested save reads back the same


def test_a_saved_nested_config_gets_the_defaults_of_keys_added_later_and_refuses_unknown_ones():
    saved = json.loads(configs.base_config().to_json())
    del saved["train"]["patience"]
    assert configs.from_saved(saved).train.patience == 0
    saved["train"]["patiense"] = 3
    with pytest.raises(ValueError, match=r"section 'train' has unknown keys \['patiense'\]"):
        configs.from_saved(saved)


def test_describe_lists_every_key_with_its_meaning():
    text = configs.describe()
    for section, entries in configs.SCHEMA.items():
        for key, _, meaning in entries:
            assert f"{section}.{key} = " in text and meaning in text
    assert "model.clip_lengths = (100, 120, 150, 200): VSLNet-L scales" in text
