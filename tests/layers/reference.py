"""Independent numpy versions of the layers' equations, written from the paper and the reference spec."""

import numpy as np

NEG = -1e30


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def masked_softmax(x, mask, axis=-1):
    return softmax(np.where(mask, x, NEG), axis=axis)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def layer_norm(x, gamma, beta, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def depthwise_conv_same(x, kernel):
    """x [B, L, d], kernel [k, d] (odd k): zero-padded 'same' depthwise convolution."""
    k = kernel.shape[0]
    half = k // 2
    padded = np.pad(x, ((0, 0), (half, half), (0, 0)))
    out = np.zeros_like(x)
    for offset in range(k):
        out += padded[:, offset : offset + x.shape[1]] * kernel[offset]
    return out


def multi_head_attention(x, mask, wq, bq, wk, bk, wv, bv, num_heads):
    b, length, d = x.shape
    h = d // num_heads
    q = (x @ wq + bq).reshape(b, length, num_heads, h).transpose(0, 2, 1, 3) / np.sqrt(h)
    k = (x @ wk + bk).reshape(b, length, num_heads, h).transpose(0, 2, 1, 3)
    v = (x @ wv + bv).reshape(b, length, num_heads, h).transpose(0, 2, 1, 3)
    p = masked_softmax(q @ k.transpose(0, 1, 3, 2), mask[:, None, None, :])
    return (p @ v).transpose(0, 2, 1, 3).reshape(b, length, d)


def lstm(x, kernel, recurrent_kernel, bias):
    """Gate order i, f, c, o."""
    b, length, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((b, units))
    c = np.zeros((b, units))
    outputs = []
    for t in range(length):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def context_query_attention(v, q, vmask, qmask, wv, wq, wm, w_out):
    s = (v @ wv) + (q @ wq).transpose(0, 2, 1) + (v * wm.reshape(-1)) @ q.transpose(0, 2, 1)
    sr = masked_softmax(s, qmask[:, None, :], axis=2)
    sc = masked_softmax(s, vmask[:, :, None], axis=1)
    a = sr @ q
    bb = sr @ sc.transpose(0, 2, 1) @ v
    return np.concatenate([v, a, v * a, v * bb], axis=-1) @ w_out, s


def attention_pooling(x, mask, w):
    a = masked_softmax((x @ w)[..., 0], mask)
    return np.einsum("bl,bld->bd", a, x)
