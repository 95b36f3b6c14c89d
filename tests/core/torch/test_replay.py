"""rng "torch": whole architectures equal what PyTorch builds after torch.manual_seed(seed),
bit for bit where the guarantee says so (``exact``), within the stated bound elsewhere."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.helpers import plan_of
from service.core.torch.init import ORTHOGONAL_BOUND_FACTOR
from tests.helpers import artifact_of as encode

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed: `pip install torch==2.13.0`")
nn = torch.nn

SEEDS = [0, 1234, 2 ** 32 + 17, 2 ** 63 - 1]

ARCHS = {
    "mlp": ([{"type": "dense", "name": "fc1", "in_features": 100, "out_features": 50, "activation": "relu"},
             {"type": "dense", "name": "fc2", "in_features": 50, "out_features": 10}],
            lambda: {"fc1": nn.Linear(100, 50), "fc2": nn.Linear(50, 10)}),
    "cnn_groups": ([{"type": "conv2d", "name": "c1", "in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2},
                    {"type": "batchnorm", "name": "bn", "num_features": 8},
                    {"type": "conv_transpose2d", "name": "up", "in_channels": 8, "out_channels": 4, "kernel_size": [2, 3],
                     "groups": 2},
                    {"type": "conv1d", "name": "c0", "in_channels": 3, "out_channels": 5, "kernel_size": 4}],
                   lambda: {"c1": nn.Conv2d(4, 8, 3, groups=2), "bn": nn.BatchNorm2d(8),
                            "up": nn.ConvTranspose2d(8, 4, (2, 3), groups=2), "c0": nn.Conv1d(3, 5, 4)}),
    "lstm_linear": ([{"type": "lstm", "name": "rnn", "input_size": 32, "hidden_size": 64},
                     {"type": "dense", "name": "head", "in_features": 64, "out_features": 7}],
                    lambda: {"rnn": nn.LSTM(32, 64), "head": nn.Linear(64, 7)}),
    "emb_ln_linear": ([{"type": "embedding", "name": "emb", "num_embeddings": 100, "embedding_dim": 16},
                       {"type": "layernorm", "name": "ln", "normalized_shape": 16},
                       {"type": "dense", "name": "out", "in_features": 16, "out_features": 4}],
                      lambda: {"emb": nn.Embedding(100, 16), "ln": nn.LayerNorm(16), "out": nn.Linear(16, 4)}),
    "attention": ([{"type": "attention", "name": "mha", "embed_dim": 32, "num_heads": 4},
                   {"type": "gru", "name": "gru", "input_size": 32, "hidden_size": 8},
                   {"type": "rnn", "name": "rnn", "input_size": 8, "hidden_size": 8}],
                  lambda: {"mha": nn.MultiheadAttention(32, 4), "gru": nn.GRU(32, 8), "rnn": nn.RNN(8, 8)}),
}


def torch_params(modules: dict) -> dict:
    """weightinit tensor name -> numpy array from real PyTorch modules."""
    out = {}
    for layer, mod in modules.items():
        for name, p in mod.named_parameters():
            v = p.detach().numpy().copy()
            if isinstance(mod, nn.MultiheadAttention) and name.startswith("in_proj_"):
                kind = name.split("_")[-1]
                e = v.shape[0] // 3
                for i, proj in enumerate("qkv"):
                    out[f"{layer}.{proj}_proj.{kind}"] = v[i * e:(i + 1) * e]
            else:
                out[f"{layer}.{name.removesuffix('_l0')}"] = v
    return out


# (scheme for weightinit, the PyTorch code a user writes after construction)
SCHEMES = {
    "torch_default": None,
    "xavier_uniform": lambda p: nn.init.xavier_uniform_(p) if p.dim() > 1 else nn.init.zeros_(p),
    "he_uniform": lambda p: nn.init.kaiming_uniform_(p, nonlinearity="relu") if p.dim() > 1 else nn.init.zeros_(p),
    "uniform_fan_in": lambda p: nn.init.kaiming_uniform_(p, a=5 ** 0.5) if p.dim() > 1 else nn.init.zeros_(p),
    "he_normal": lambda p: nn.init.kaiming_normal_(p) if p.dim() > 1 else nn.init.zeros_(p),
    "xavier_normal": lambda p: nn.init.xavier_normal_(p) if p.dim() > 1 else nn.init.zeros_(p),
    "lecun_normal": lambda p: nn.init.kaiming_normal_(p, nonlinearity="linear") if p.dim() > 1 else nn.init.zeros_(p),
    "orthogonal": lambda p: nn.init.orthogonal_(p) if p.dim() > 1 else nn.init.zeros_(p),
    # the primitives with weightinit's defaults (these failed with an AttributeError before)
    "normal": lambda p: nn.init.normal_(p) if p.dim() > 1 else nn.init.zeros_(p),
    "truncated_normal": lambda p: nn.init.trunc_normal_(p) if p.dim() > 1 else nn.init.zeros_(p),
}


def _pytorch(arch, scheme, seed):
    layers, build = ARCHS[arch]
    torch.manual_seed(seed)
    modules = build()
    fn = SCHEMES[scheme]
    if fn is not None:
        for layer, mod in modules.items():
            if isinstance(mod, (nn.LayerNorm, nn.BatchNorm2d)):
                continue  # norms keep 1 and 0 (weightinit: no request scheme on norm tensors)
            if isinstance(mod, nn.MultiheadAttention):
                e = mod.embed_dim
                with torch.no_grad():
                    for i in range(3):
                        fn(mod.in_proj_weight[i * e:(i + 1) * e])
                    for i in range(3):
                        nn.init.zeros_(mod.in_proj_bias[i * e:(i + 1) * e])
                    fn(mod.out_proj.weight)
                    nn.init.zeros_(mod.out_proj.bias)
                continue
            with torch.no_grad():
                for _, p in mod.named_parameters():
                    fn(p)
    return torch_params(modules)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scheme", list(SCHEMES))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_equals_pytorch(arch, scheme, seed):
    layers, _ = ARCHS[arch]
    doc = {"architecture": {"layers": layers}, "scheme": scheme, "rng": "torch", "seed": seed}
    plan = plan_of(doc)
    expected = _pytorch(arch, scheme, seed)
    assert {t.name for t in plan.selected} == set(expected)
    for t in plan.selected:
        ours, exact = t.replay.values(t)
        ref = expected[t.name]
        assert ours.shape == ref.shape, t.name
        th = t.theory()
        if th["exact"]:
            assert exact, t.name
            assert np.array_equal(ours.view(np.uint32), ref.view(np.uint32)), (t.name, th["torch_call"])
        else:
            assert th["torch_call"].startswith("torch.nn.init.orthogonal_")
            bound = ORTHOGONAL_BOUND_FACTOR * max(ref.shape[0], ref.size // ref.shape[0]) * 2.0 ** -24
            assert np.max(np.abs(ours - ref)) <= bound, t.name


@pytest.mark.parametrize("arch", ["lstm_linear", "attention"])
def test_subset_equals_full_run(arch):
    layers, _ = ARCHS[arch]
    doc = {"architecture": {"layers": layers}, "scheme": "he_normal", "rng": "torch", "seed": 3}
    full = {t.name: t.generate() for t in plan_of(doc).selected}
    for name in list(full)[::3]:
        sub = plan_of({**doc, "tensors": [name]}).selected
        assert [t.name for t in sub] == [name]
        assert np.array_equal(sub[0].generate(), full[name])


def test_keras_layout_is_the_transpose_and_dtypes_are_casts():
    layers, _ = ARCHS["mlp"]
    doc = {"architecture": {"layers": layers}, "scheme": "xavier_uniform", "rng": "torch", "seed": 11}
    t = plan_of(doc).selected[0].generate()
    k = plan_of({**doc, "layout": "keras"}).selected[0].generate()
    assert np.array_equal(k, t.T)
    f64 = plan_of({**doc, "dtype": "float64"}).selected[0].generate()
    assert np.array_equal(f64, t.astype(np.float64))
    bf = plan_of({**doc, "dtype": "bfloat16"}).selected[0].generate()
    expect = torch.from_numpy(t).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    assert np.array_equal(bf, expect)


@pytest.mark.parametrize("fmt", ["npz", "safetensors", "json"])
def test_every_format_carries_the_torch_values(fmt):
    layers, _ = ARCHS["emb_ln_linear"]
    doc = {"architecture": {"layers": layers}, "scheme": "torch_default", "rng": "torch", "seed": 99}
    plan = plan_of(doc)
    data = b"".join(bytes(c) for c in encode(plan, fmt).chunks())
    expected = _pytorch("emb_ln_linear", "torch_default", 99)
    if fmt == "npz":
        z = np.load(io.BytesIO(data), allow_pickle=False)
        got = {n: z[n] for n in expected}
        assert json.loads(str(z["manifest"]))["rng"] == "torch"
    elif fmt == "safetensors":
        from safetensors.numpy import load

        got = load(data)
    else:
        doc_out = json.loads(data)
        got = {t["name"]: np.array(t["values"], np.float32) for t in doc_out["tensors"]}
        assert all(t["exact"] is True for t in doc_out["tensors"])
        assert doc_out["engine"]["bit_generator"].startswith("MT19937")
    for name, ref in expected.items():
        assert np.array_equal(got[name], ref), name
