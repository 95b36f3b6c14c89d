"""Every layer type of the registry, against its real PyTorch module: the same parameters (names,
shapes, order), PyTorch's fans, framework defaults that are PyTorch's constructor draws, and a
``rng: torch`` replay that is bit-exact, in both layouts and with and without biases.

Each type's ``example`` (core.layers) is the layer tested, so a type added to the registry is
tested here without a line of this file changing; the PyTorch side comes from TORCH_MODULES, which
a new type must extend (a test fails until it does).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.core import layers
from service.core.fans import torch_fans
from tests.helpers import plan_of

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is installed by scripts/test-deps.sh")
nn = torch.nn
Conv1D = pytest.importorskip("transformers.pytorch_utils",
                             reason="transformers (test-only) is installed by scripts/test-deps.sh").Conv1D


def _kernel(ex, d):
    k = ex["kernel_size"]
    return tuple([k] * d if isinstance(k, int) else k)


#: layer type -> (its example, bias) -> the real module (parameters in named_parameters() order).
TORCH_MODULES = {
    "dense": lambda ex, bias: nn.Linear(ex["in_features"], ex["out_features"], bias=bias),
    **{f"conv{d}d": (lambda d: lambda ex, bias: getattr(nn, f"Conv{d}d")(
        ex["in_channels"], ex["out_channels"], _kernel(ex, d), groups=ex["groups"], bias=bias))(d) for d in (1, 2, 3)},
    **{f"conv_transpose{d}d": (lambda d: lambda ex, bias: getattr(nn, f"ConvTranspose{d}d")(
        ex["in_channels"], ex["out_channels"], _kernel(ex, d), groups=ex["groups"], bias=bias))(d) for d in (1, 2, 3)},
    "embedding": lambda ex, bias: nn.Embedding(ex["num_embeddings"], ex["embedding_dim"], ex.get("padding_idx")),
    "rnn": lambda ex, bias: nn.RNN(ex["input_size"], ex["hidden_size"], bias=bias),
    "lstm": lambda ex, bias: nn.LSTM(ex["input_size"], ex["hidden_size"], bias=bias),
    "gru": lambda ex, bias: nn.GRU(ex["input_size"], ex["hidden_size"], bias=bias),
    "batchnorm": lambda ex, bias: nn.BatchNorm1d(ex["num_features"]),
    "layernorm": lambda ex, bias: nn.LayerNorm(ex["normalized_shape"]),  # bias: false drops ours; torch's stays
    "attention": lambda ex, bias: nn.MultiheadAttention(ex["embed_dim"], ex["num_heads"], bias=bias),
    "tensor": None,  # nn.Parameter(torch.empty(shape)): no module, no draws
    "rmsnorm": lambda ex, bias: nn.RMSNorm(ex["normalized_shape"]),
    "groupnorm": lambda ex, bias: nn.GroupNorm(ex["num_groups"], ex["num_channels"]),
    "hf_conv1d": lambda ex, bias: _conv1d(ex["in_features"], ex["out_features"], bias),
}
#: Types whose PyTorch parameter is stored as weightinit stores it, not as the PyTorch view its fans are
#: computed on: transformers' Conv1D keeps a Linear's weight transposed, (in, out).
STORED_TRANSPOSED = {"hf_conv1d"}


def _conv1d(i: int, o: int, bias: bool):
    """transformers' Conv1D(nf=out, nx=in), its bias dropped for bias: false (Conv1D always has one)."""
    m = Conv1D(o, i)
    if not bias:
        del m.bias
        m.register_parameter("bias", None)
    return m


#: weightinit's tensor name -> PyTorch's, where they differ (unpacked attention; one-layer recurrent).
RENAMED = {
    "attention": lambda suffix: {"q_proj": "in_proj", "k_proj": "in_proj", "v_proj": "in_proj"}.get(
        suffix.split(".")[0], suffix.split(".")[0]) + ("_" if not suffix.startswith("out") else ".") + suffix.split(".")[1],
    **{r: (lambda suffix: f"{suffix}_l0") for r in ("rnn", "lstm", "gru")},
}
TYPES = list(layers.REGISTRY)


def doc(kind: str, **extra) -> dict:
    return {"architecture": {"layers": [{"type": kind, "name": "x", **layers.get(kind).example}]}, **extra}


def test_every_type_has_a_torch_module_here():
    assert set(TORCH_MODULES) == set(TYPES)


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_tensors_are_the_modules_parameters(kind, bias):
    plan = plan_of(doc(kind, bias=None if bias else False))
    make = TORCH_MODULES[kind]
    if make is None:
        assert [t.name for t in plan.tensors] == ["x"]
        return
    module = make(layers.get(kind).example, bias)
    ours = {t.spec.suffix: t for t in plan.tensors}
    theirs = dict(module.named_parameters())
    rename = RENAMED.get(kind, lambda s: s)
    assert {rename(s) for s in ours} == set(theirs), (sorted(ours), sorted(theirs))
    for suffix, t in ours.items():
        p = theirs[rename(suffix)]
        if kind == "attention" and suffix.split(".")[0] in ("q_proj", "k_proj", "v_proj"):
            e = layers.get(kind).example["embed_dim"]  # a third of the packed (3E, E) / (3E,) parameter
            assert t.spec.torch_shape == ((e, e) if p.ndim == 2 else (e,)) and p.shape[0] == 3 * e
            continue
        if kind in STORED_TRANSPOSED:
            assert t.shape == tuple(p.shape), suffix
            if p.ndim == 2:  # a Linear's fans: fan_in = in_features (PyTorch's rule on (in, out) would swap them)
                assert (t.spec.fan_in, t.spec.fan_out) == tuple(p.shape), suffix
            continue
        assert t.spec.torch_shape == tuple(p.shape), suffix
        if p.ndim >= 2 and kind != "embedding":
            assert (t.spec.fan_in, t.spec.fan_out) == nn.init._calculate_fan_in_and_fan_out(p), suffix


@pytest.mark.parametrize("kind", TYPES)
def test_rng_torch_replays_the_modules_constructor_bit_for_bit(kind):
    """torch_default keeps what the constructors draw: the module's parameters exactly, with a Linear
    before and after it still in step with PyTorch's stream."""
    ex = layers.get(kind).example
    d = {"architecture": {"layers": [{"type": "dense", "name": "pre", "in_features": 5, "out_features": 7},
                                     {"type": kind, "name": "x", **ex},
                                     {"type": "dense", "name": "post", "in_features": 7, "out_features": 3}]},
         "scheme": "torch_default", "rng": "torch", "seed": 11}
    plan = plan_of(d)
    values = {t.name: t.generate() for t in plan.tensors}
    torch.manual_seed(11)
    pre, mid = nn.Linear(5, 7), TORCH_MODULES[kind] and TORCH_MODULES[kind](ex, True)
    post = nn.Linear(7, 3)
    for name, p in [*pre.named_parameters(prefix="pre"), *post.named_parameters(prefix="post")]:
        assert np.array_equal(values[name], p.detach().numpy()), name
    if mid is None:
        return
    theirs = dict(mid.named_parameters())
    for t in plan.tensors:
        if t.spec.layer != "x":
            continue
        p = theirs[RENAMED.get(kind, lambda s: s)(t.spec.suffix)].detach().numpy()
        if kind == "attention" and not t.spec.suffix.startswith("out_proj"):
            e, i = ex["embed_dim"], "qkv".index(t.spec.suffix[0])
            p = p[i * e:(i + 1) * e]
        assert np.array_equal(values[t.name], p), t.name


@pytest.mark.parametrize("kind", [k for k, t in layers.REGISTRY.items() if t.norm])
def test_a_norm_between_two_layers_draws_nothing_under_a_scheme(kind):
    """he_uniform on [Linear, norm, Linear]: the norm keeps 1 and 0 and draws nothing, so the second
    Linear's kaiming_uniform_ follows the first's in PyTorch's stream."""
    d = {"architecture": {"layers": [{"type": "dense", "name": "pre", "in_features": 5, "out_features": 16},
                                     {"type": kind, "name": "x", **layers.get(kind).example},
                                     {"type": "dense", "name": "post", "in_features": 16, "out_features": 3}]},
         "scheme": "he_uniform", "rng": "torch", "seed": 5}
    values = {t.name: t.generate() for t in plan_of(d).tensors}
    torch.manual_seed(5)
    pre, mid, post = nn.Linear(5, 16), TORCH_MODULES[kind](layers.get(kind).example, True), nn.Linear(16, 3)
    with torch.no_grad():
        for m in (pre, post):
            nn.init.kaiming_uniform_(m.weight, a=0.0, mode="fan_in", nonlinearity="leaky_relu")
            m.bias.zero_()
    for name, p in [*pre.named_parameters(prefix="pre"), *post.named_parameters(prefix="post"),
                    *mid.named_parameters(prefix="x")]:
        assert np.array_equal(values[name], p.detach().numpy()), name


@pytest.mark.parametrize("kind", TYPES)
def test_unknown_type_is_an_error_everywhere(kind):
    with pytest.raises(Exception, match="unknown layer type"):
        layers.get(kind + "_nope")


@pytest.mark.parametrize("kind", [k for k, t in layers.REGISTRY.items() if t.norm])
@pytest.mark.parametrize("policy", ["torch_default", "keras_default", "auto", "he_normal"])
def test_norms_start_at_one_and_zero(kind, policy):
    plan = plan_of(doc(kind, scheme=policy))
    for t in plan.tensors:
        v = t.generate()
        assert np.all(v == (1.0 if t.spec.role == "norm_weight" else 0.0)), (t.name, policy)
        assert t.spec.fan_in == t.spec.fan_out == math.prod(t.shape)


def test_rmsnorm_has_no_shift_and_groupnorm_checks_its_groups():
    from tests.helpers import problem_of

    assert problem_of({"architecture": {"layers": [{"type": "rmsnorm", "normalized_shape": 4, "bias": "zeros"}]}}) \
        == ("architecture.layers.0.bias", "a rmsnorm layer has no bias", None)
    assert problem_of({"architecture": {"layers": [{"type": "groupnorm", "num_groups": 3, "num_channels": 4}]}}) \
        == ("architecture.layers.0.num_groups", "num_groups (3) must divide num_channels (4)", None)
    assert [t.name for t in plan_of(doc("rmsnorm")).tensors] == ["x.weight"]
    assert torch_fans((16,)) == (16, 16)
