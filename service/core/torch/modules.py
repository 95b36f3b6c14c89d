"""``torch.nn``'s module constructors, replayed: each draws what the module's ``__init__`` and
``reset_parameters`` draw, in order, and returns its parameters as ``named_parameters()`` lists
them: ``(name, float32 array in PyTorch's shape, exact)``.

A layer type (``core.layers``) says which of these it is in PyTorch; ``MODULES`` names them by
PyTorch's class, for the tests that compare each with the real one.
"""

from __future__ import annotations

import math

import numpy as np

from ..gates import GATES
from . import init
from .generator import TorchCPUGenerator, shape_tuple

_F32 = np.float32

Param = tuple[str, np.ndarray, bool]


def _ntuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    t = tuple(int(x) for x in v)
    if len(t) != n:
        raise ValueError(f"kernel_size needs {n} values")
    return t


def _linear_like(gen: TorchCPUGenerator, weight_shape, bias_size: int | None, prefix: str = "") -> list[Param]:
    """nn.Linear's reset_parameters (and every conv's): kaiming_uniform_(a=sqrt(5)), then the bias from
    U[+-1/sqrt(fan_in)]."""
    w = init.kaiming_uniform_(gen, weight_shape, a=math.sqrt(5))
    out = [(prefix + "weight", w, True)]
    if bias_size is not None:
        fan_in, _ = init.fans(weight_shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        out.append((prefix + "bias", gen.uniform_((bias_size,), -bound, bound), True))
    return out


def linear(gen, in_features, out_features, bias=True) -> list[Param]:
    """nn.Linear(in_features, out_features, bias)."""
    return _linear_like(gen, (int(out_features), int(in_features)), int(out_features) if bias else None)


def conv(gen, dims: int, transposed: bool, in_channels, out_channels, kernel_size, groups=1, bias=True) -> list[Param]:
    """nn.Conv{dims}d / nn.ConvTranspose{dims}d(in_channels, out_channels, kernel_size, groups=, bias=)."""
    in_channels, out_channels, groups = int(in_channels), int(out_channels), int(groups)
    if groups <= 0:
        raise ValueError("groups must be a positive integer")
    if in_channels % groups or out_channels % groups:
        raise ValueError("in_channels and out_channels must be divisible by groups")
    k = _ntuple(kernel_size, dims)
    shape = (in_channels, out_channels // groups, *k) if transposed else (out_channels, in_channels // groups, *k)
    return _linear_like(gen, shape, out_channels if bias else None)


def embedding(gen, num_embeddings, embedding_dim, padding_idx=None) -> list[Param]:
    """nn.Embedding(num_embeddings, embedding_dim, padding_idx): N(0, 1), the padding row zeroed."""
    w, exact = gen.normal_((int(num_embeddings), int(embedding_dim)), 0.0, 1.0)
    if padding_idx is not None:
        w = w.copy()
        w[int(padding_idx)] = 0
    return [("weight", w, exact)]


def recurrent(gen, mode: str, input_size, hidden_size, bias=True, num_layers=1, bidirectional=False,
              proj_size=0) -> list[Param]:
    """nn.RNN / nn.LSTM / nn.GRU (``mode`` rnn | lstm | gru): every parameter U[+-1/sqrt(hidden_size)], in
    registration order."""
    gates = GATES[mode]
    input_size, hidden_size, num_layers = int(input_size), int(hidden_size), int(num_layers)
    proj_size = int(proj_size)
    if proj_size and mode != "lstm":
        raise ValueError("proj_size is only supported by lstm")
    gate = gates * hidden_size
    real_hidden = proj_size if proj_size > 0 else hidden_size
    dirs = 2 if bidirectional else 1
    stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
    out: list[Param] = []
    for layer in range(num_layers):
        for direction in range(dirs):
            layer_in = input_size if layer == 0 else real_hidden * dirs
            sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            specs = [("weight_ih" + sfx, (gate, layer_in)), ("weight_hh" + sfx, (gate, real_hidden))]
            if bias:
                specs += [("bias_ih" + sfx, (gate,)), ("bias_hh" + sfx, (gate,))]
            if proj_size > 0:
                specs.append(("weight_hr" + sfx, (proj_size, hidden_size)))
            for name, shape in specs:
                out.append((name, gen.uniform_(shape, -stdv, stdv), True))
    return out


def batchnorm(gen, num_features, affine=True) -> list[Param]:
    """nn.BatchNorm1d/2d/3d(num_features, affine): weight 1, bias 0, no draws."""
    if not affine:
        return []
    n = int(num_features)
    return [("weight", np.ones(n, _F32), True), ("bias", np.zeros(n, _F32), True)]


def layernorm(gen, normalized_shape, elementwise_affine=True, bias=True) -> list[Param]:
    """nn.LayerNorm(normalized_shape, elementwise_affine, bias): weight 1, bias 0, no draws."""
    shape = shape_tuple(normalized_shape)
    if not elementwise_affine:
        return []
    out = [("weight", np.ones(shape, _F32), True)]
    if bias:
        out.append(("bias", np.zeros(shape, _F32), True))
    return out


def rmsnorm(gen, normalized_shape, elementwise_affine=True) -> list[Param]:
    """nn.RMSNorm(normalized_shape, elementwise_affine): weight 1, no bias, no draws."""
    if not elementwise_affine:
        return []
    return [("weight", np.ones(shape_tuple(normalized_shape), _F32), True)]


def groupnorm(gen, num_groups, num_channels, affine=True) -> list[Param]:
    """nn.GroupNorm(num_groups, num_channels, affine): weight 1, bias 0, no draws."""
    if int(num_channels) % int(num_groups):
        raise ValueError("num_channels must be divisible by num_groups")
    if not affine:
        return []
    n = int(num_channels)
    return [("weight", np.ones(n, _F32), True), ("bias", np.zeros(n, _F32), True)]


def multihead_attention(gen, embed_dim, num_heads, bias=True, add_bias_kv=False, kdim=None, vdim=None) -> list[Param]:
    """nn.MultiheadAttention: ``__init__`` builds out_proj (an nn.Linear: it draws) first, then
    ``_reset_parameters``: xavier_uniform_ on in_proj_weight (or q/k/v_proj_weight), zero biases (the
    out_proj.bias draws are consumed and thrown away), xavier_normal_ on bias_k, bias_v."""
    e, h = int(embed_dim), int(num_heads)
    if e <= 0 or h <= 0:
        raise ValueError("embed_dim and num_heads must be greater than 0")
    if (e // h) * h != e:
        raise ValueError("embed_dim must be divisible by num_heads")
    kdim = e if kdim is None else int(kdim)
    vdim = e if vdim is None else int(vdim)
    same = kdim == e and vdim == e
    out_proj = _linear_like(gen, (e, e), e if bias else None, prefix="out_proj.")
    own: list[Param] = []
    if same:
        own.append(("in_proj_weight", init.xavier_uniform_(gen, (3 * e, e)), True))
    else:
        own.append(("q_proj_weight", init.xavier_uniform_(gen, (e, e)), True))
        own.append(("k_proj_weight", init.xavier_uniform_(gen, (e, kdim)), True))
        own.append(("v_proj_weight", init.xavier_uniform_(gen, (e, vdim)), True))
    if bias:
        own.append(("in_proj_bias", np.zeros(3 * e, _F32), True))
        out_proj[1] = ("out_proj.bias", np.zeros(e, _F32), True)
    if add_bias_kv:
        bk, ek = init.xavier_normal_(gen, (1, 1, e))
        bv, ev = init.xavier_normal_(gen, (1, 1, e))
        own += [("bias_k", bk, ek), ("bias_v", bv, ev)]
    return own + out_proj


#: PyTorch's class name -> the replayed constructor (keyword arguments as PyTorch's, minus dims/mode).
MODULES = {
    "Linear": linear,
    **{f"Conv{d}d": (lambda d: lambda gen, **kw: conv(gen, d, False, **kw))(d) for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": (lambda d: lambda gen, **kw: conv(gen, d, True, **kw))(d) for d in (1, 2, 3)},
    "Embedding": embedding,
    "RNN": lambda gen, **kw: recurrent(gen, "rnn", **kw),
    "LSTM": lambda gen, **kw: recurrent(gen, "lstm", **kw),
    "GRU": lambda gen, **kw: recurrent(gen, "gru", **kw),
    "BatchNorm": batchnorm,
    "LayerNorm": layernorm,
    "RMSNorm": rmsnorm,
    "GroupNorm": groupnorm,
    "MultiheadAttention": multihead_attention,
}
