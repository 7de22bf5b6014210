"""The tensors of the authors' PyTorch VSLNet checkpoint (26hzhang/VSLNet `main_t7.py` saves `<model_name>_<step>.t7`,
a torch state dict) mapped onto nlvl-tf's VSLNet in the authors' padding with a CQA output bias (docs/model.md 10).

Every tensor of the state dict maps to weights of ours and every weight of ours comes from a tensor; a missing, extra
or misshaped tensor is refused by its name. Layouts:

- kernel-1 `Conv1D` weights [out, in, 1] (all their "linear" layers) -> Dense kernels [in, out];
- the depthwise convolutions [C, 1, k] -> `DepthwiseConv1D` kernels [k, C, 1] (both cross-correlate; PyTorch's
  padding k // 2 is TensorFlow's SAME for odd k);
- the character convolutions (`Conv2d` over [1, width]) [out, in, 1, width] -> `Conv1D` kernels [width, in, out];
- `nn.LSTM` weight_ih [4h, in] and weight_hh [4h, h] -> kernel [in, 4h] and recurrent kernel [h, 4h], transposed. Its
  gate blocks are ordered i, f, g, o and ours i, f, c, o, where our c is its g (the candidate): the same order, so the
  blocks keep their places. Its two bias vectors enter every step as the sum b_ih + b_hh, which is our one bias;
- LayerNorm weight / bias -> gamma / beta (both use epsilon 1e-6);
- the word table: `pad_vec` is a constant zero in their code as in ours (a non-zero one is refused), `unk_vec` is our
  UNK row, `glove_vec` our frozen vectors;
- the character table [C, char_dim]: row 0 (PAD) -> the character CNN's `pad_vector` (the authors' padding holds it),
  rows 1.. -> `char_table`.
"""

import dataclasses
import re

import numpy as np

from nlvl_tf import errors
from nlvl_tf.model import restore
from nlvl_tf.video import weights as weights_lib


class CheckpointError(errors.InputError):
    """A state dict that does not fit the model; the message names the file and the tensors at fault."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Weights of ours filled from tensors of theirs: `variable` = convert(*tensors named `sources`), each of the
    shape in `shapes`. A None variable is a tensor that is only checked (convert raises when it does not fit)."""

    variable: object
    sources: tuple
    shapes: tuple
    convert: object


def read_state_dict(path):
    """{name: numpy array} of a torch-saved state dict; needs torch (the optional extra `torch`)."""
    try:
        return weights_lib.read_pytorch(path)
    except weights_lib.WeightsError as error:
        raise CheckpointError(str(error)) from None


def checkpoint_step(path):
    """The training step in the authors' checkpoint name `<model_name>_<step>.t7`, or 0 when it has none."""
    match = re.search(r"_(\d+)\.t7$", str(path))
    return int(match.group(1)) if match else 0


def _dense(prefix, layer, kernel_1_conv=True):
    """A kernel-1 convolution -> a Dense layer: their `Conv1D` wrapper ({prefix}.conv1d.weight / .bias), or with
    `kernel_1_conv=False` a bare `nn.Conv1d` ({prefix}.weight / .bias)."""
    inputs, units = layer.kernel.shape
    prefix = f"{prefix}.conv1d" if kernel_1_conv else prefix
    found = [Target(layer.kernel, (f"{prefix}.weight",), ((units, inputs, 1),), lambda w: w[:, :, 0].T)]
    if layer.use_bias:
        found.append(Target(layer.bias, (f"{prefix}.bias",), ((units,),), _same))
    return found


def _layer_norm(prefix, layer):
    size = layer.gamma.shape[0]
    return [
        Target(layer.gamma, (f"{prefix}.weight",), ((size,),), _same),
        Target(layer.beta, (f"{prefix}.bias",), ((size,),), _same),
    ]


def _lstm(prefix, layer):
    units, inputs = layer.units, layer.kernel.shape[0]
    names = [f"{prefix}.lstm.{name}_l0" for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return [
        Target(layer.kernel, (names[0],), ((4 * units, inputs),), np.transpose),
        Target(layer.recurrent_kernel, (names[1],), ((4 * units, units),), np.transpose),
        Target(layer.bias, tuple(names[2:]), ((4 * units,), (4 * units,)), np.add),
    ]


def _same(array):
    return array


def _zero_pad_vector(array):
    if np.any(array != 0):
        raise CheckpointError(
            "embedding_net.word_emb.pad_vec is not all zero: the authors' code keeps the PAD word vector at zero "
            "(requires_grad=False), as nlvl-tf does"
        )


# The config.model of the authors' VSLNet holding their PyTorch port's parameters (their code has no other variant).
AUTHORS_MODEL = dict(
    name="vslnet",
    use_char_cnn=True,
    encoder_type="cmf",
    attention_type="cqa",
    highlight_projection=True,
    predictor_head="mlp",
    padding_semantics="authors",
    cqa_output_bias=True,
)


def targets(model):
    """Every tensor name of the authors' VSLNet state dict with the weights of `model` it fills, as `Target`s.

    `model` is a built VSLNet with the `AUTHORS_MODEL` settings.
    """
    wanted = {**AUTHORS_MODEL, "use_highlighting": True}
    del wanted["name"]
    differing = {
        key: model.hyperparameters[key] for key, value in wanted.items() if model.hyperparameters[key] != value
    }
    if differing:
        raise errors.InputError(f"the authors' VSLNet needs {wanted}; this model has {differing}")
    return _embedding_targets(model) + _encoder_targets(model.feature_encoder) + _fusion_and_predictor_targets(model)


def _embedding_targets(model):
    hp = model.hyperparameters
    words, chars = model.word_embedding, model.char_cnn
    word_dim, char_dim = hp["word_dim"], hp["char_dim"]
    found = [
        Target(None, ("embedding_net.word_emb.pad_vec",), ((1, word_dim),), _zero_pad_vector),
        Target(words.unknown_vector, ("embedding_net.word_emb.unk_vec",), ((1, word_dim),), lambda v: v[0]),
        Target(
            words.pretrained_vectors,
            ("embedding_net.word_emb.glove_vec",),
            ((hp["vocabulary_size"] - 2, word_dim),),
            _same,
        ),
        Target(
            (chars.pad_vector, chars.char_table),
            ("embedding_net.char_emb.char_emb.weight",),
            ((hp["num_chars"], char_dim),),
            lambda table: (table[0], table[1:]),
        ),
    ]
    for index, (width, conv) in enumerate(zip(hp["char_kernel_widths"], chars.convolutions)):
        prefix = f"embedding_net.char_emb.char_convs.{index}.0"
        filters = conv.kernel.shape[-1]
        found += [
            Target(
                conv.kernel,
                (f"{prefix}.weight",),
                ((filters, char_dim, 1, width),),
                lambda w: np.transpose(w[:, :, 0, :], (2, 1, 0)),
            ),
            Target(conv.bias, (f"{prefix}.bias",), ((filters,),), _same),
        ]
    return (
        found
        + _dense("embedding_net.linear", model.query_projection)
        + _dense("video_affine.linear", model.video_projection)
    )


def _encoder_targets(encoder):
    table = encoder.positional_embedding
    found = [Target(table, ("feature_encoder.pos_embedding.position_embeddings.weight",), (tuple(table.shape),), _same)]
    for index, block in enumerate(encoder.conv_blocks):
        prefix = f"feature_encoder.conv_block.depthwise_separable_conv.{index}"
        width, channels = block.depthwise.kernel.shape[:2]
        found.append(
            Target(
                block.depthwise.kernel,
                (f"{prefix}.0.weight",),
                ((channels, 1, width),),
                lambda w: np.transpose(w, (2, 0, 1)),
            )
        )
        found += _dense(f"{prefix}.1", block.pointwise, kernel_1_conv=False)
        found += _layer_norm(f"feature_encoder.conv_block.layer_norms.{index}", block.norm)
    attention = encoder.attention
    for name, projection in (
        ("query", attention.query_projection),
        ("key", attention.key_projection),
        ("value", attention.value_projection),
    ):
        found += _dense(f"feature_encoder.attention_block.{name}", projection)
    found += _layer_norm("feature_encoder.attention_block.layer_norm1", encoder.attention_norm)
    found += _layer_norm("feature_encoder.attention_block.layer_norm2", encoder.feed_forward_norm)
    return found + _dense("feature_encoder.attention_block.out_layer", encoder.feed_forward)


def _fusion_and_predictor_targets(model):
    cqa = model.cross_attention
    found = [
        Target(variable, (f"cq_attention.{name}",), (tuple(variable.shape),), _same)
        for name, variable in (("w4C", cqa.video_weight), ("w4Q", cqa.query_weight), ("w4mlu", cqa.product_weight))
    ]
    found += _dense("cq_attention.cqa_linear", cqa.output_projection)
    pooling = model.sentence_pooling.score_weight
    found.append(Target(pooling, ("cq_concat.weighted_pool.weight",), (tuple(pooling.shape),), _same))
    found += _dense("cq_concat.conv1d", model.highlighting.concat_projection)
    found += _dense("highlight_layer.conv1d", model.highlighting.scorer)
    predictor = model.span_predictor
    found += _lstm("predictor.start_encoder", predictor.start_lstm)
    found += _lstm("predictor.end_encoder", predictor.end_lstm)
    for side, (hidden, output) in (("start", predictor.start_head), ("end", predictor.end_head)):
        found += _dense(f"predictor.{side}_block.0", hidden) + _dense(f"predictor.{side}_block.2", output)
    return found


def expected_shapes(model):
    """{tensor name: shape} of the authors' state dict that fits `model`."""
    return {name: shape for target in targets(model) for name, shape in zip(target.sources, target.shapes)}


def load_into(model, state, path="state dict"):
    """Assigns the tensors of `state` ({name: array}, the authors' names) to `model`'s weights.

    Raises:
        CheckpointError naming `path` and every missing, extra or misshaped tensor, or a tensor whose value cannot be
        held; nothing is assigned then.
    """
    found = targets(model)
    expected = {name: shape for target in found for name, shape in zip(target.sources, target.shapes)}
    problems = [f"missing {name} {list(shape)}" for name, shape in expected.items() if name not in state]
    problems += [f"extra {name} {list(np.shape(state[name]))}" for name in state if name not in expected]
    problems += [
        f"misshaped {name}: {list(np.shape(state[name]))}, expected {list(shape)}"
        for name, shape in expected.items()
        if name in state and tuple(np.shape(state[name])) != tuple(shape)
    ]
    if problems:
        raise CheckpointError(
            f"{path} does not fit the authors' VSLNet at these settings ({len(problems)} problems): "
            + "; ".join(problems)
        )
    assignments = []  # every value converted (and checked) before the first is assigned
    for target in found:
        value = target.convert(*(np.asarray(state[name], np.float32) for name in target.sources))
        if isinstance(target.variable, tuple):
            assignments += zip(target.variable, value)
        elif target.variable is not None:
            assignments.append((target.variable, value))
    _check_every_weight_assigned_once(model, [variable for variable, _ in assignments])
    for variable, value in assignments:
        variable.assign(value)


def _check_every_weight_assigned_once(model, assigned):
    """Every weight `tf.train.Checkpoint(model=model)` saves is in `assigned` exactly once (a mapping bug else)."""
    counts = {}
    for variable in assigned:
        counts[id(variable)] = counts.get(id(variable), 0) + 1
    wrong = [
        f"{key} ({counts.get(id(variable), 0)}x)"
        for key, variable in restore.variable_keys(model).items()
        if "seed_generator" not in key and counts.get(id(variable), 0) != 1
    ]
    if wrong:
        raise AssertionError(f"weights not assigned exactly once by the authors' mapping: {wrong}")
