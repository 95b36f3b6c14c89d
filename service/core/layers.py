"""Layer types -> the tensors they own, with PyTorch's names, both layouts' shapes, and fans.

Fans are a property of the layer, not of the layout. They are computed on the PyTorch view
of each weight, ``(out, in/groups, *k)`` (``(in, out/groups, *k)`` for transposed convs,
``(gates*H, I)`` for recurrent kernels), with PyTorch's rule ``fan_in = shape[1] * prod(k)``,
``fan_out = shape[0] * prod(k)``; Keras's rule on its own kernel layout gives the same numbers
for dense, conv (with groups), transposed conv and recurrent kernels.

Where they disagree: an embedding table ``(num_embeddings, embedding_dim)`` has, by PyTorch's
rule, fan_in = embedding_dim and fan_out = num_embeddings; by Keras's, the reverse. weightinit
follows PyTorch and says so in each embedding tensor's ``fan_note``. 1-D tensors (biases,
norm scales) get the fans of the weight they belong to (that is what PyTorch's bias bound
1/sqrt(fan_in) uses); a free-standing 1-D tensor gets (n, n), Keras's rank-1 rule.

Keras layout: the storage is the PyTorch view with axes permuted ``(2, ..., r-1, 1, 0)``:
Dense (in, out); Conv (*k, in/groups, out); ConvTranspose (*k, out/groups, in); recurrent
(I, gates*H). Embeddings and 1-D tensors are stored alike in both layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import SpecError
from .gains import ACTIVATIONS, DEFAULT_LEAKY_SLOPE

#: Number of gate blocks in the recurrent kernels, PyTorch's order (LSTM i,f,g,o; GRU r,z,n).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CONV_DIMS = {"conv1d": 1, "conv2d": 2, "conv3d": 3, "conv_transpose1d": 1, "conv_transpose2d": 2, "conv_transpose3d": 3}

#: Fields of every layer type (besides type, name, activation, scheme, bias); the public contract.
LAYER_FIELDS: dict[str, tuple[str, ...]] = {
    "dense": ("in_features", "out_features"),
    **{t: ("in_channels", "out_channels", "kernel_size", "groups") for t in CONV_DIMS},
    "embedding": ("num_embeddings", "embedding_dim"),
    "rnn": ("input_size", "hidden_size"),
    "lstm": ("input_size", "hidden_size"),
    "gru": ("input_size", "hidden_size"),
    "batchnorm": ("num_features",),
    "layernorm": ("normalized_shape",),
    "attention": ("embed_dim", "num_heads"),
    "tensor": ("shape", "fan_in", "fan_out"),
}
LAYER_TYPES: tuple[str, ...] = tuple(LAYER_FIELDS)
COMMON_FIELDS = ("type", "name", "activation", "scheme", "bias")
#: Layer types with a bias the request's ``bias`` applies to.
BIASED = {"dense", *CONV_DIMS, "rnn", "lstm", "gru", "attention"}
NORMS = {"batchnorm", "layernorm"}

MAX_DIM = 1 << 31          # no single dimension beyond 2^31
MAX_RANK = 8
NAME_MAX = 128


@dataclass(frozen=True)
class Activation:
    name: str = "linear"
    negative_slope: float = DEFAULT_LEAKY_SLOPE

    def describe(self):
        return {"name": self.name, "negative_slope": self.negative_slope} if self.name == "leaky_relu" else self.name


@dataclass(frozen=True)
class TensorSpec:
    name: str
    layer: str
    layer_index: int
    layer_type: str
    role: str               # weight | bias | norm_weight | norm_bias | raw ; recurrent weights are "weight"
    torch_shape: tuple
    shape: tuple            # storage shape in the request's layout
    fan_in: int
    fan_out: int
    activation: Activation
    groups: int = 1
    gates: int = 1          # recurrent gate blocks (for the LSTM forget-gate bias)
    kind: str = ""          # recurrent: ih | hh ; attention: q | k | v | out
    fan_note: str | None = None
    perm: tuple = ()        # axes taking the PyTorch view to the storage shape

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class Layer:
    index: int
    name: str
    type: str
    activation: Activation
    fields: dict
    scheme: object = None        # a layer-level scheme spec (normalized) or None
    bias: object = None          # a layer-level bias scheme spec, False, or None
    tensors: list = field(default_factory=list)


def _pos_int(d: dict, key: str, *, maximum: int = MAX_DIM, default=None) -> int:
    v = d.get(key, default)
    if v is None:
        raise SpecError(key, "is required")
    if isinstance(v, bool) or not isinstance(v, int):
        raise SpecError(key, f"must be an integer, got {v!r}")
    if v < 1:
        raise SpecError(key, f"must be >= 1, got {v}")
    if v > maximum:
        raise SpecError(key, f"must be <= {maximum}, got {v}")
    return v


def _int_list(d: dict, key: str, length: int | None, *, minimum: int = 1) -> tuple:
    v = d.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and length is not None:
        v = [v] * length
    if not isinstance(v, list) or not v:
        raise SpecError(key, f"must be {'an integer or ' if length else ''}a non-empty list of integers")
    if length is not None and len(v) != length:
        raise SpecError(key, f"must have {length} entries, got {len(v)}")
    if len(v) > MAX_RANK:
        raise SpecError(key, f"must have at most {MAX_RANK} entries")
    for i, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, int):
            raise SpecError(f"{key}.{i}", f"must be an integer, got {x!r}")
        if x < minimum or x > MAX_DIM:
            raise SpecError(f"{key}.{i}", f"must be in [{minimum}, {MAX_DIM}], got {x}")
    return tuple(v)


def keras_perm(rank: int) -> tuple:
    """Axes taking a PyTorch-view weight (out, in, *k) to Keras's (*k, in, out)."""
    if rank < 2:
        return tuple(range(rank))
    return tuple(range(2, rank)) + (1, 0)


def torch_fans(torch_shape: tuple) -> tuple[int, int]:
    if len(torch_shape) < 2:
        n = torch_shape[0] if torch_shape else 1
        return n, n
    rf = math.prod(torch_shape[2:])
    return torch_shape[1] * rf, torch_shape[0] * rf


def parse_activation(value) -> Activation:
    if value is None:
        return Activation()
    if isinstance(value, str):
        name, slope = value, DEFAULT_LEAKY_SLOPE
    elif isinstance(value, dict):
        extra = set(value) - {"name", "negative_slope"}
        if extra:
            raise SpecError(f"activation.{sorted(extra)[0]}", "unknown field (accepted: name, negative_slope)")
        name = value.get("name")
        slope = value.get("negative_slope", DEFAULT_LEAKY_SLOPE)
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not (0 <= slope <= 1e3):
            raise SpecError("activation.negative_slope", "must be a number in [0, 1000]")
    else:
        raise SpecError("activation", "must be an activation name or {name, negative_slope}")
    if name not in ACTIVATIONS:
        raise SpecError("activation", f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return Activation(name, float(slope))


def check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise SpecError("name", "must be a non-empty string")
    if len(name) > NAME_MAX:
        raise SpecError("name", f"must be at most {NAME_MAX} characters, got {len(name)}")
    ok = all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)
    if not ok or name[0] in ".-" or name.endswith(".") or ".." in name:
        raise SpecError("name", "may hold only ASCII letters, digits, '_', '-' and single inner '.' "
                                "(it becomes part of file names, headers and archive entries)")
    return name


def _tensor(layer: Layer, suffix: str, role: str, torch_shape: tuple, layout: str, fans=None, **kw) -> TensorSpec:
    name = f"{layer.name}.{suffix}" if suffix else layer.name
    fan_in, fan_out = fans if fans else torch_fans(torch_shape)
    perm = keras_perm(len(torch_shape)) if layout == "keras" and kw.pop("permute", True) else tuple(range(len(torch_shape)))
    kw.pop("permute", None)
    shape = tuple(torch_shape[i] for i in perm)
    return TensorSpec(name, layer.name, layer.index, layer.type, role, tuple(torch_shape), shape, fan_in, fan_out,
                      layer.activation, perm=perm, **kw)


def layer_tensors(layer: Layer, layout: str, with_bias: bool) -> list[TensorSpec]:
    """The tensors a layer owns, in PyTorch's ``named_parameters()`` order."""
    f, t = layer.fields, layer.type
    out: list[TensorSpec] = []
    if t == "dense":
        i, o = _pos_int(f, "in_features"), _pos_int(f, "out_features")
        w = _tensor(layer, "weight", "weight", (o, i), layout)
        out.append(w)
        if with_bias:
            out.append(_tensor(layer, "bias", "bias", (o,), layout, fans=(w.fan_in, w.fan_out)))
    elif t in CONV_DIMS:
        d = CONV_DIMS[t]
        cin, cout = _pos_int(f, "in_channels"), _pos_int(f, "out_channels")
        k = _int_list(f, "kernel_size", d)
        g = _pos_int(f, "groups", default=1)
        if cin % g or cout % g:
            raise SpecError("groups", f"groups ({g}) must divide in_channels ({cin}) and out_channels ({cout})")
        shape = (cin, cout // g, *k) if t.startswith("conv_transpose") else (cout, cin // g, *k)
        w = _tensor(layer, "weight", "weight", shape, layout, groups=g)
        out.append(w)
        if with_bias:
            out.append(_tensor(layer, "bias", "bias", (cout,), layout, fans=(w.fan_in, w.fan_out)))
    elif t == "embedding":
        n, dim = _pos_int(f, "num_embeddings"), _pos_int(f, "embedding_dim")
        out.append(_tensor(layer, "weight", "weight", (n, dim), layout, permute=False,
                           fan_note="embedding fans follow PyTorch (fan_in = embedding_dim, fan_out = num_embeddings); "
                                    "Keras's rule would give fan_in = num_embeddings"))
    elif t in GATES:
        inp, h = _pos_int(f, "input_size"), _pos_int(f, "hidden_size")
        gates = GATES[t]
        ih = _tensor(layer, "weight_ih", "weight", (gates * h, inp), layout, gates=gates, kind="ih")
        hh = _tensor(layer, "weight_hh", "weight", (gates * h, h), layout, gates=gates, kind="hh")
        out += [ih, hh]
        if with_bias:
            out.append(_tensor(layer, "bias_ih", "bias", (gates * h,), layout, fans=(ih.fan_in, ih.fan_out), gates=gates, kind="ih"))
            out.append(_tensor(layer, "bias_hh", "bias", (gates * h,), layout, fans=(hh.fan_in, hh.fan_out), gates=gates, kind="hh"))
    elif t in NORMS:
        if t == "batchnorm":
            shape = (_pos_int(f, "num_features"),)
        elif isinstance(f.get("normalized_shape"), int) and not isinstance(f.get("normalized_shape"), bool):
            shape = (_pos_int(f, "normalized_shape"),)
        else:
            shape = _int_list(f, "normalized_shape", None)
        n = math.prod(shape)
        out.append(_tensor(layer, "weight", "norm_weight", shape, layout, fans=(n, n), permute=False))
        if with_bias:
            out.append(_tensor(layer, "bias", "norm_bias", shape, layout, fans=(n, n), permute=False))
    elif t == "attention":
        e, heads = _pos_int(f, "embed_dim"), _pos_int(f, "num_heads")
        if e % heads:
            raise SpecError("embed_dim", f"embed_dim ({e}) must be divisible by num_heads ({heads})")
        for proj in ("q", "k", "v", "out"):
            w = _tensor(layer, f"{proj}_proj.weight", "weight", (e, e), layout, kind=proj)
            out.append(w)
            if with_bias:
                out.append(_tensor(layer, f"{proj}_proj.bias", "bias", (e,), layout, fans=(e, e), kind=proj))
    elif t == "tensor":
        shape = _int_list(f, "shape", None)
        # A raw tensor is given in the request's layout; its PyTorch view undoes the Keras permutation.
        if layout == "keras" and len(shape) >= 2:
            perm = keras_perm(len(shape))
            torch_shape = tuple(shape[perm.index(i)] for i in range(len(shape)))
        else:
            torch_shape = shape
        fi, fo = torch_fans(torch_shape)
        if f.get("fan_in") is not None:
            fi = _pos_int(f, "fan_in")
        if f.get("fan_out") is not None:
            fo = _pos_int(f, "fan_out")
        out.append(_tensor(layer, "", "raw", torch_shape, layout, fans=(fi, fo)))
    else:
        raise SpecError("type", f"unknown layer type {t!r}; expected one of {', '.join(LAYER_TYPES)}")
    return out
