"""The network the diagnostics run: dense and convolution stages in float64 NumPy, forward and backward.

Convolutions are PyTorch's ``padding="same"``, stride 1, dilation 1, any groups (for an even kernel
the extra zero goes on the right), computed by im2col per batch chunk; a conv followed by a dense
layer is flattened channels first (``nn.Flatten``). Activations and their derivatives are those of
``core.activations``' registry (the derivative of relu at 0 is 0, as in PyTorch).

Transformer blocks: a probe example is a sequence of ``tokens`` vectors; dense and layernorm layers
act on each token (the network's rows are the batch's tokens), and a dense layer with role
``attn_qkv`` projects to fused q, k, v (GPT-2's ``c_attn``: [q | k | v], heads within each) that
multi-head scaled dot-product self-attention (all tokens, no mask, as ``nn.MultiheadAttention``
without ``attn_mask``) turns into the next layer's input. LayerNorm is PyTorch's (eps 1e-5, biased
variance). A residual branch keeps the stream at its first layer's input and adds it to its last
layer's output: pre-LN when the branch starts with a layernorm, post-LN when a layernorm follows it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..activations import Activation
from ..errors import SpecError

#: PyTorch's LayerNorm eps.
LAYERNORM_EPS = 1e-5

#: Conv im2col buffers are built per batch chunk of at most this many bytes.
CONV_CHUNK_BYTES = 16 << 20

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Stage:
    """One runnable layer: its shapes per example (channels first), kernel and activation."""

    index: int
    name: str
    type: str
    activation: Activation
    in_shape: tuple          # what the layer receives, per example (after any flatten)
    out_shape: tuple         # (units,) or (channels, *spatial)
    kernel: tuple = ()
    groups: int = 1
    flatten: bool = False    # the previous conv's output is flattened into this dense layer
    role: str | None = None  # the layer's role in its model (core.roles)
    tokens: int = 1          # vectors per example (a sequence): dense and layernorm layers act on each
    heads: int = 0           # > 0: out_shape is fused q, k, v; self-attention with this many heads follows
    branch_start: bool = False  # the first layer of a residual branch: its input is the stream, kept
    branch_end: bool = False    # the last layer of a residual branch: the kept stream is added to its output

    @property
    def units(self) -> int:
        return self.out_shape[0]

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        """Values of the layer's output per example (every token)."""
        return math.prod(self.out_shape) * self.tokens

    @property
    def next_shape(self) -> tuple:
        """What the next layer receives per token: the attention's output (E = units / 3) after a fused
        q, k, v projection, else the layer's output."""
        return (self.units // 3,) if self.heads else self.out_shape

    @property
    def weight_shape(self) -> tuple:
        if self.type == "dense":
            return (self.out_shape[0], self.in_shape[0])
        if self.type == "layernorm":
            return self.out_shape
        return (self.out_shape[0], self.in_shape[0] // self.groups, *self.kernel)

    @property
    def attention_macs(self) -> int:
        """Multiply-adds of the self-attention per example: scores q k^T and their weighted sum of v,
        tokens^2 x E each."""
        return 2 * self.tokens * self.tokens * self.next_shape[0] if self.heads else 0

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass, per example (every token; a layernorm counts ~8 per value)."""
        if self.type == "layernorm":
            return 8 * self.out_size
        return self.out_size * math.prod(self.weight_shape[1:]) + self.attention_macs


def _same_pads(k: int) -> tuple[int, int]:
    """PyTorch's padding='same' for stride 1: k - 1 zeros, the extra one on the right."""
    left = (k - 1) // 2
    return left, k - 1 - left


def _chunk(n: int, per_example_bytes: int) -> int:
    return max(1, min(n, CONV_CHUNK_BYTES // max(1, per_example_bytes)))


def _im2col(x: np.ndarray, kernel: tuple, groups: int) -> np.ndarray:
    """(b, C, *S) -> (G, b*P, Cg*K): every 'same'-padded receptive field, grouped."""
    d = len(kernel)
    b, c, *spatial = x.shape
    xp = np.pad(x, [(0, 0), (0, 0)] + [_same_pads(k) for k in kernel])
    win = np.lib.stride_tricks.sliding_window_view(xp, kernel, axis=tuple(range(2, 2 + d)))  # (b, C, *S, *k)
    cg = c // groups
    win = win.reshape(b, groups, cg, *spatial, *kernel)
    order = (1, 0, *range(3, 3 + d), 2, *range(3 + d, 3 + 2 * d))  # (G, b, *S, Cg, *k)
    return win.transpose(order).reshape(groups, b * math.prod(spatial), cg * math.prod(kernel))


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, groups: int = 1) -> np.ndarray:
    """Cross-correlation as PyTorch's Conv{1,2}d(stride=1, padding='same', dilation=1, groups).

    x: (B, C, *S); w: (O, C/groups, *k); returns (B, O, *S)."""
    kernel = w.shape[2:]
    B, c, *spatial = x.shape
    o = w.shape[0]
    og = o // groups
    wg = w.reshape(groups, og, -1)                                  # (G, Og, Cg*K)
    out = np.empty((B, o, *spatial), dtype=np.float64)
    step = _chunk(B, 8 * math.prod(spatial) * c * math.prod(kernel))
    for s in range(0, B, step):
        cols = _im2col(x[s:s + step], kernel, groups)               # (G, b*P, Cg*K)
        z = np.matmul(cols, wg.transpose(0, 2, 1))                  # (G, b*P, Og)
        n = min(step, B - s)
        z = z.reshape(groups, n, *spatial, og)
        out[s:s + n] = np.moveaxis(z, -1, 1).reshape(groups * og, n, *spatial).swapaxes(0, 1)
    if b is not None:
        out += b.reshape(1, o, *([1] * len(spatial)))
    return out


def conv_backward(x: np.ndarray, w: np.ndarray, delta: np.ndarray, groups: int = 1, need_dx: bool = True):
    """Gradients of ``sum(delta * conv_forward(x, w, b))``: (dx or None, dW, db), summed over the batch."""
    kernel = w.shape[2:]
    d = len(kernel)
    B, c, *spatial = x.shape
    o = w.shape[0]
    og, cg = o // groups, c // groups
    wg = w.reshape(groups, og, -1)
    dw = np.zeros((groups, cg * math.prod(kernel), og))
    dx = np.empty_like(x) if need_dx else None
    pads = [_same_pads(k) for k in kernel]
    step = _chunk(B, 16 * math.prod(spatial) * c * math.prod(kernel))
    for s in range(0, B, step):
        n = min(step, B - s)
        cols = _im2col(x[s:s + n], kernel, groups)                   # (G, n*P, Cg*K)
        dg = delta[s:s + n].reshape(n, groups, og, -1)               # (n, G, Og, P)
        dg = dg.transpose(1, 0, 3, 2).reshape(groups, -1, og)        # (G, n*P, Og)
        dw += np.matmul(cols.transpose(0, 2, 1), dg)
        if need_dx:
            dcols = np.matmul(dg, wg)                                # (G, n*P, Cg*K)
            dcols = dcols.reshape(groups, n, *spatial, cg, *kernel)
            order = (1, 0, 2 + d, *range(2, 2 + d), *range(3 + d, 3 + 2 * d))  # (n, G, Cg, *S, *k)
            dcols = dcols.transpose(order).reshape(n, c, *spatial, *kernel)
            dxp = np.zeros((n, c, *[sp + k - 1 for sp, k in zip(spatial, kernel)]))
            for t in itertools.product(*[range(k) for k in kernel]):
                sl = (slice(None), slice(None), *[slice(ti, ti + sp) for ti, sp in zip(t, spatial)])
                dxp[sl] += dcols[(Ellipsis, *t)]
            crop = (slice(None), slice(None), *[slice(p[0], p[0] + sp) for p, sp in zip(pads, spatial)])
            dx[s:s + n] = dxp[crop]
    dW = dw.transpose(0, 2, 1).reshape(w.shape)
    db = delta.sum(axis=(0, *range(2, delta.ndim)))
    return dx, dW, db


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activate(act: Activation, z: np.ndarray) -> np.ndarray:
    name = act.name
    if name == "linear":
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, act.negative_slope * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if name == "gelu":
        from scipy.special import ndtr
        return z * ndtr(z)
    if name == "silu":
        return z * _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise SpecError("activation", f"cannot run activation {name!r}")  # pragma: no cover - validated before


def activation_backward(act: Activation, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dl/dz from dl/da = g (the derivative at 0 of relu is 0, as in PyTorch)."""
    name = act.name
    if name == "linear":
        return g.copy()
    if name == "relu":
        return np.where(z > 0, g, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, g, act.negative_slope * g)
    if name == "elu":
        return np.where(z > 0, g, g * np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, g, g * SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "gelu":
        from scipy.special import ndtr
        return g * (ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))
    if name == "silu":
        s = _sigmoid(z)
        return g * s * (1.0 + z * (1.0 - s))
    if name == "tanh":
        return g * (1.0 - a * a)
    if name == "sigmoid":
        return g * a * (1.0 - a)
    if name == "softmax":
        return a * (g - (a * g).sum(axis=1, keepdims=True))
    raise SpecError("activation", f"cannot run activation {name!r}")  # pragma: no cover


def layernorm_forward(x: np.ndarray):
    """(x - mean) / sqrt(var + eps) over the last axis: (normalized, 1 / sqrt(var + eps))."""
    mu = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + LAYERNORM_EPS)
    return (x - mu) * rstd, rstd


def layernorm_backward(xhat: np.ndarray, rstd: np.ndarray, dxhat: np.ndarray) -> np.ndarray:
    """dl/dx from dl/d(normalized x)."""
    return rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))


def _heads_view(z: np.ndarray, tokens: int, heads: int):
    """(B*T, 3E) fused [q | k | v] -> q, k, v of shape (B, H, T, E/H)."""
    n, e3 = z.shape
    qkv = z.reshape(n // tokens, tokens, 3, heads, e3 // (3 * heads))
    return (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))


def attention_forward(z: np.ndarray, tokens: int, heads: int):
    """softmax(q k^T / sqrt(d)) v per head, heads concatenated: ((B*T, E), the attention weights P)."""
    q, k, v = _heads_view(z, tokens, heads)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o = p @ v                                                      # (B, H, T, d)
    return o.transpose(0, 2, 1, 3).reshape(len(z), -1), p


def attention_backward(z: np.ndarray, p: np.ndarray, g: np.ndarray, tokens: int, heads: int) -> np.ndarray:
    """dl/dz (fused q, k, v) from dl/d(attention output) = g."""
    q, k, v = _heads_view(z, tokens, heads)
    b, h, t, d = q.shape
    go = g.reshape(b, t, h, d).transpose(0, 2, 1, 3)
    dv = p.transpose(0, 1, 3, 2) @ go
    dp = go @ v.transpose(0, 1, 3, 2)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) / math.sqrt(d)
    dq, dk = ds @ k, ds.transpose(0, 1, 3, 2) @ q
    dz = np.stack([dq, dk, dv], axis=2)                            # (B, H, 3, T, d)
    return dz.transpose(0, 3, 2, 1, 4).reshape(z.shape)


class Network:
    """Stages with their float64 weights (PyTorch view) and biases; forward and backward."""

    def __init__(self, stages, weights, biases):
        self.stages = list(stages)
        self.weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self.biases = [None if b is None else np.asarray(b, dtype=np.float64) for b in biases]
        self.inputs: list = []
        self.z: list = []
        self.a: list = []
        #: What each stage passes on: its activation, plus the kept stream at a branch's end.
        self.outputs: list = []
        #: Per stage: the attention weights (attention) or (normalized input, 1/std) (layernorm).
        self.saved: list = []

    def layer_forward(self, i: int, x: np.ndarray) -> np.ndarray:
        """The layer's pre-activation z for input x."""
        return self.layer_forward_saved(i, x)[0]

    def layer_forward_saved(self, i: int, x: np.ndarray):
        """(z, what backward needs besides the input: a layernorm's normalized input and 1/std)."""
        st, w, b = self.stages[i], self.weights[i], self.biases[i]
        if st.type == "layernorm":
            xhat, rstd = layernorm_forward(x)
            z = xhat * w
            if b is not None:
                z += b
            return z, (xhat, rstd)
        if st.type == "dense":
            z = x.reshape(len(x), -1) @ w.T
            if b is not None:
                z += b
            return z, None
        return conv_forward(x, w, b, st.groups), None

    def forward(self, x: np.ndarray, *, stop_at_overflow: bool = True):
        """Run every stage; yields (index, input, z, a) as it goes and keeps them for backward."""
        self.inputs, self.z, self.a, self.outputs, self.saved = [], [], [], [], []
        stream = None
        for i, st in enumerate(self.stages):
            if st.flatten:
                x = x.reshape(len(x), -1)
            if st.branch_start:
                stream = x
            z, saved = self.layer_forward_saved(i, x)
            a = activate(st.activation, z)
            if st.heads:
                a, saved = attention_forward(a, st.tokens, st.heads)
            out = stream + a if st.branch_end else a
            self.inputs.append(x)
            self.z.append(z)
            self.a.append(a)
            self.outputs.append(out)
            self.saved.append(saved)
            yield i, x, z, a
            if stop_at_overflow and not (np.isfinite(z).all() and np.isfinite(out).all()):
                return
            x = out

    def run_forward(self, x: np.ndarray) -> np.ndarray:
        for _ in self.forward(x, stop_at_overflow=False):
            pass
        return self.outputs[-1]

    def backward(self, g: np.ndarray):
        """From dl/d(output) = g per example, yield (index, dl/da, dl/dz, dW, db) from the last
        layer to the first (dW, db: gradients of the batch mean), then (-1, dl/dx, None, None, None)."""
        B = len(g)
        skip = None
        for i in range(len(self.stages) - 1, -1, -1):
            st = self.stages[i]
            if st.branch_end:
                skip = g  # the stream's own path past the branch
            x, w = self.inputs[i], self.weights[i]
            if st.heads:  # the attention follows the (linear) projection: a = attention(z)
                delta = attention_backward(self.z[i], self.saved[i], g, st.tokens, st.heads)
            else:
                delta = activation_backward(st.activation, self.z[i], self.a[i], g)
            if st.type == "layernorm":
                xhat, rstd = self.saved[i]
                dW = (delta * xhat).sum(axis=0) / B
                db = delta.sum(axis=0) / B
                dx = layernorm_backward(xhat, rstd, delta * w)
            elif st.type == "dense":
                dW = delta.T @ x / B
                db = delta.sum(axis=0) / B
                dx = delta @ w
            else:
                dx, dW, db = conv_backward(x, w, delta, st.groups)
                dW /= B
                db /= B
            yield i, g, delta, dW, (db if self.biases[i] is not None else None)
            if st.flatten:
                dx = dx.reshape(B, *self.stages[i - 1].out_shape)
            if st.branch_start:
                dx = dx + skip
            g = dx
        yield -1, g, None, None, None
