"""Weight loaders: random files with the real releases' names and shapes (tests/video/data/i3d_tensors.json) in both
torch serializations and as a DeepMind TF1 checkpoint carrying the same values load to the same Keras weights, every
tensor in its place; a misshaped, missing or extra tensor is refused by name; Keras weights files load without torch."""

import hashlib
import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf
import torch

from nlvl_tf.video import i3d, weights

TENSORS = json.loads((pathlib.Path(__file__).parent / "data" / "i3d_tensors.json").read_text())
BN_TO_KERAS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
BN_TO_DEEPMIND = {"bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def random_state_dict(seed, gamma_one=False):
    """Random tensors for every entry of pytorch-i3d's rgb_imagenet.pt, of its shapes and dtypes."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape, dtype in TENSORS["pytorch_rgb_imagenet"]:
        if dtype == "int64":
            state[name] = torch.tensor(int(rng.integers(1, 10**6)))
        elif name.endswith("conv3d.weight"):
            fan_in = int(np.prod(shape[1:]))
            state[name] = torch.from_numpy(rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32))
        elif name.endswith("running_var") or name.endswith("bn.weight"):
            values = np.ones(shape) if gamma_one and name.endswith("bn.weight") else rng.uniform(0.7, 1.3, shape)
            state[name] = torch.from_numpy(values.astype(np.float32))
        else:
            state[name] = torch.from_numpy(rng.normal(0, 0.1, shape).astype(np.float32))
    return state


def keras_path(name):
    """Where a state dict entry must land: 'Mixed_4b.b1b.bn.running_var' -> the Keras variable path."""
    *unit, layer, key = name.split(".")
    leaf = "kernel" if (layer, key) == ("conv3d", "weight") else "bias" if layer == "conv3d" else None
    leaf = leaf or f"batch_norm/{BN_TO_KERAS[key]}"
    return "/".join(["inception_i3d", *unit, leaf])


def deepmind_scope(unit):
    """'Mixed_4b.b1b' -> 'RGB/inception_i3d/Mixed_4b/Branch_1/Conv3d_0b_3x3' (Mixed_5b's b2b is 'Conv3d_0a_3x3')."""
    if unit == "logits":
        return "RGB/inception_i3d/Logits/Conv3d_0c_1x1"
    if "." not in unit:
        return f"RGB/inception_i3d/{unit}"
    module, branch = unit.split(".")
    letter = "a" if branch in ("b0", "b1a", "b2a") or unit == "Mixed_5b.b2b" else "b"
    size = "3x3" if branch in ("b1b", "b2b") else "1x1"
    return f"RGB/inception_i3d/{module}/Branch_{branch[1]}/Conv3d_0{letter}_{size}"


def deepmind_tensors(state):
    """The DeepMind checkpoint's {name: array} with the state dict's values (the batch norm scales must be 1)."""
    out = {}
    for name, value in state.items():
        *unit, layer, key = name.split(".")
        scope, value = deepmind_scope(".".join(unit)), value.numpy()
        if layer == "conv3d":
            out[f"{scope}/conv_3d/{'w' if key == 'weight' else 'b'}"] = (
                np.transpose(value, (2, 3, 4, 1, 0)) if key == "weight" else value
            )
        elif key in BN_TO_DEEPMIND:
            out[f"{scope}/batch_norm/{BN_TO_DEEPMIND[key]}"] = value
        elif key == "weight":
            assert np.all(value == 1), name
    return out


def save_checkpoint(tensors, prefix):
    """A name-based TF checkpoint (what TF1's Saver wrote) holding `tensors`."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    return str(prefix)


def variables(model):
    return {variable.path: variable.numpy() for variable in model.weights}


def features(model):
    x = np.random.default_rng(0).uniform(-1, 1, (1, 9, 193, 193, 3)).astype(np.float32)
    return model(x, training=False)["feature"].numpy()


def test_the_fixture_is_the_real_releases_and_the_name_maps_agree():
    pytorch = TENSORS["pytorch_rgb_imagenet"]
    assert len(pytorch) == 344 and len(TENSORS["deepmind_rgb_imagenet"]) == 230
    converted = deepmind_tensors(random_state_dict(0, gamma_one=True))
    assert {name: list(value.shape) for name, value in converted.items()} == dict(
        map(tuple, TENSORS["deepmind_rgb_imagenet"])
    )


def test_state_dicts_in_both_serializations_put_every_tensor_in_its_place(tmp_path):
    state = random_state_dict(1)
    legacy, zipped = tmp_path / "legacy.pt", tmp_path / "zipped.pt"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    torch.save(state, zipped)
    assert legacy.read_bytes()[:2] != b"PK" and zipped.read_bytes()[:2] == b"PK"  # two formats indeed
    loaded = variables(weights.load(legacy))
    assert loaded.keys() == variables(weights.load(zipped)).keys()
    for key, value in variables(weights.load(zipped)).items():
        np.testing.assert_array_equal(value, loaded[key])
    placed = set()
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        want = value.numpy()
        if name.endswith("conv3d.weight"):
            want = np.transpose(want, (2, 3, 4, 1, 0))  # [out, in, t, h, w] -> [t, h, w, in, out]
        np.testing.assert_array_equal(loaded[keras_path(name)], want, err_msg=name)
        placed.add(keras_path(name))
    assert placed == set(loaded)  # every Keras weight came from the file


def test_a_deepmind_checkpoint_with_the_same_values_loads_to_the_same_weights_and_features(tmp_path):
    state = random_state_dict(2, gamma_one=True)
    torch.save(state, tmp_path / "rgb.pt")
    prefix = save_checkpoint(deepmind_tensors(state), tmp_path / "model.ckpt")
    from_torch, from_deepmind = weights.load(tmp_path / "rgb.pt"), weights.load(prefix)
    theirs = variables(from_deepmind)
    for key, value in variables(from_torch).items():
        np.testing.assert_array_equal(theirs[key], value, err_msg=key)
    got = features(from_deepmind)
    np.testing.assert_allclose(got, features(from_torch), atol=1e-5)
    assert np.std(got) > 0.1

    converted = tmp_path / "rgb.weights.h5"
    weights.save(from_deepmind, converted)
    sys.modules["torch"] = None  # any `import torch` now fails: the Keras file must not need it
    try:
        reloaded = weights.load(converted)
        with pytest.raises(weights.WeightsError, match=r'needs torch: pip install "nlvl-tf\[torch\]"'):
            weights.load(tmp_path / "rgb.pt")
    finally:
        sys.modules["torch"] = torch
    np.testing.assert_array_equal(features(reloaded), got)
    assert reloaded.num_classes == 400
    assert weights.fingerprint(prefix) != weights.fingerprint(tmp_path / "rgb.pt")
    assert len(weights.files_of(prefix)) == 2  # index + one data shard


@pytest.fixture(scope="module")
def small_state():
    return random_state_dict(3)


@pytest.mark.parametrize(
    "change, message",
    [
        ("shape Mixed_4c.b2b.conv3d.weight", "Mixed_4c.b2b.conv3d.weight: expected shape [64, 24, 3, 3, 3], got [64"),
        ("drop Mixed_5b.b3b.bn.running_var", "missing tensor Mixed_5b.b3b.bn.running_var"),
        ("add Mixed_6a.b0.conv3d.weight", "unexpected tensor Mixed_6a.b0.conv3d.weight"),
        ("shape Conv3d_1a_7x7.bn.num_batches_tracked", "Conv3d_1a_7x7.bn.num_batches_tracked: expected an integer"),
    ],
)
def test_a_changed_state_dict_is_refused_naming_the_tensor(tmp_path, small_state, change, message):
    state = dict(small_state)
    action, name = change.split()
    if action == "shape":
        state[name] = torch.zeros(list(state[name].shape)[:-1] + [2]) if state[name].dim() else torch.zeros(2)
    elif action == "drop":
        del state[name]
    else:
        state[name] = torch.zeros(1)
    torch.save(state, tmp_path / "changed.pt")
    with pytest.raises(weights.WeightsError) as error:
        weights.load(tmp_path / "changed.pt")
    assert str(error.value).startswith(f"{tmp_path / 'changed.pt'}: {message}"), str(error.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            "shape RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w",
            "RGB/inception_i3d/Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w: expected shape [3, 3, 3, 32, 128], got",
        ),
        (
            "drop RGB/inception_i3d/Conv3d_2c_3x3/batch_norm/beta",
            "missing tensor RGB/inception_i3d/Conv3d_2c_3x3/batch_norm/beta",
        ),
        ("add RGB/inception_i3d/global_step", "unexpected tensor RGB/inception_i3d/global_step"),
    ],
)
def test_a_changed_checkpoint_is_refused_naming_the_tensor(tmp_path, change, message):
    tensors = deepmind_tensors(random_state_dict(4, gamma_one=True))
    action, name = change.split()
    if action == "shape":
        tensors[name] = np.zeros(tensors[name].shape[:-1] + (2,), np.float32)
    elif action == "drop":
        del tensors[name]
    else:
        tensors[name] = np.zeros((), np.float32)
    prefix = save_checkpoint(tensors, tmp_path / "model.ckpt")
    with pytest.raises(weights.WeightsError) as error:
        weights.load(prefix)
    assert str(error.value).startswith(f"{prefix}: {message}"), str(error.value)


def test_other_files_are_refused_by_name(tmp_path):
    (tmp_path / "notes.pt").write_text("not a state dict")
    (tmp_path / "x.weights.h5").write_text("not hdf5")
    for path, message in (
        (tmp_path / "notes.pt", "not a readable torch state dict"),
        (tmp_path / "x.weights.h5", "not a Keras weights file"),
        (tmp_path / "nothing", "not a .pt state dict, a .weights.h5 file or a TensorFlow checkpoint prefix"),
    ):
        with pytest.raises(weights.WeightsError, match=f"^{path}: {message}"):
            weights.load(path)
    torch.save({"model": {"a": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(weights.WeightsError, match="expected a state dict"):
        weights.load(tmp_path / "nested.pt")


def test_a_charades_classifier_without_counters_loads(tmp_path, small_state):
    """rgb_charades.pt's 157 outputs come from the file; state dicts saved before PyTorch 0.4.1 have no
    num_batches_tracked (nothing else changes)."""
    state = {name: value for name, value in small_state.items() if not name.endswith("num_batches_tracked")}
    state["logits.conv3d.weight"] = torch.zeros(157, 1024, 1, 1, 1)
    state["logits.conv3d.bias"] = torch.zeros(157)
    torch.save(state, tmp_path / "rgb_charades.pt")
    model = weights.load(tmp_path / "rgb_charades.pt")
    assert model.num_classes == 157 and isinstance(model, i3d.InceptionI3D)


def test_sha256_of_files_hashes_their_bytes_in_order_across_chunks(tmp_path):
    first, second = tmp_path / "a.index", tmp_path / "a.data-00000-of-00001"
    first.write_bytes(bytes(range(256)) * 5)
    second.write_bytes(b"weights")
    expected = hashlib.sha256(first.read_bytes() + second.read_bytes()).hexdigest()
    assert weights.sha256_of_files([first, second], chunk_bytes=100) == expected
    assert weights.sha256_of_files([second, first]) != expected
