"""``megatron`` against megatron-core 0.16.1: its ``init_method_normal`` / ``scaled_init_method_normal``
(through ``TransformerConfig``'s defaults and called directly) applied with a fixed torch seed to the
modules of the same model equal our ``rng: "torch"`` output bit for bit; the std each of those
functions carries is each tensor's reported std; a 422 names a bad parameter."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from service import create_app
from tests.helpers import LLAMA_TINY, plan_of, report_of

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed: bash scripts/test-deps.sh")
nn = torch.nn

with warnings.catch_warnings():
    # megatron-core's import warns (torch.jit.script_method deprecated; Transformer Engine and Apex absent:
    # it falls back to its local kernels); none of it touches the two init functions
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", UserWarning)
    megatron_utils = pytest.importorskip(
        "megatron.core.utils", reason="megatron-core (test-only) is not installed: bash scripts/test-deps.sh")
    from megatron.core.transformer.transformer_config import TransformerConfig

init_method_normal = megatron_utils.init_method_normal
scaled_init_method_normal = megatron_utils.scaled_init_method_normal


def gpt(n_layer: int, e: int = 16, vocab: int = 64) -> list[dict]:
    """A pre-LN GPT as Megatron builds one (embedding, position embedding, per layer LayerNorm, fused qkv, the
    attention's output layer, LayerNorm, fc1, fc2 (the MLP's output layer), a final LayerNorm, an output layer),
    its branches marked by role."""
    layers = [{"type": "embedding", "name": "word_embeddings", "num_embeddings": vocab, "embedding_dim": e,
               "role": "embedding"},
              {"type": "embedding", "name": "position_embeddings", "num_embeddings": 8, "embedding_dim": e,
               "role": "position_embedding"}]
    for i in range(n_layer):
        p = f"layers.{i}."
        layers += [{"type": "layernorm", "name": p + "input_layernorm", "normalized_shape": e},
                   {"type": "dense", "name": p + "self_attention.linear_qkv", "in_features": e, "out_features": 3 * e,
                    "role": "attn_qkv"},
                   {"type": "dense", "name": p + "self_attention.linear_proj", "in_features": e, "out_features": e,
                    "role": "attn_out"},
                   {"type": "layernorm", "name": p + "pre_mlp_layernorm", "normalized_shape": e},
                   {"type": "dense", "name": p + "mlp.linear_fc1", "in_features": e, "out_features": 4 * e,
                    "role": "mlp_in", "activation": "gelu"},
                   {"type": "dense", "name": p + "mlp.linear_fc2", "in_features": 4 * e, "out_features": e,
                    "role": "mlp_out"}]
    return layers + [{"type": "layernorm", "name": "final_layernorm", "normalized_shape": e},
                     {"type": "dense", "name": "output_layer", "in_features": e, "out_features": vocab, "bias": False,
                      "role": "readout"}]


def config(num_layers: int, std: float):
    """Megatron's own defaults: init_method, output_layer_init_method and embedding_init_method as
    TransformerConfig sets them from init_method_std and num_layers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "full scope is deprecated" (cuda_graph_scope)
        return TransformerConfig(num_layers=num_layers, hidden_size=16, num_attention_heads=2, init_method_std=std)


def megatron_values(layers: list[dict], seed: int, init_method, output_init_method, embedding_init_method):
    """torch.manual_seed(seed); the modules in order; then Megatron's methods on each weight (output layers:
    output_layer_init_method), biases 0, norms as constructed: tensor name -> values."""
    torch.manual_seed(seed)
    built = []
    for d in layers:
        if d["type"] == "embedding":
            built.append((d, nn.Embedding(d["num_embeddings"], d["embedding_dim"])))
        elif d["type"] == "layernorm":
            built.append((d, nn.LayerNorm(d["normalized_shape"])))
        else:
            built.append((d, nn.Linear(d["in_features"], d["out_features"], bias=d.get("bias", True))))
    out = {}
    with torch.no_grad():
        for d, m in built:
            for name, p in m.named_parameters():
                if d["type"] != "layernorm":
                    if name == "bias":
                        nn.init.zeros_(p)
                    elif d["type"] == "embedding":
                        embedding_init_method(p)
                    else:
                        (output_init_method if d.get("role") in ("attn_out", "mlp_out") else init_method)(p)
                out[f"{d['name']}.{name}"] = p.detach().numpy().copy()
    return out


CASES = [(2, 0.02, None), (5, 0.05, None), (3, 0.02, 12)]  # (blocks, init_method_std, the num_layers parameter)


@pytest.mark.parametrize("seed", [0, 2 ** 32 + 5])
@pytest.mark.parametrize("n_layer, std, num_layers", CASES)
def test_bit_exact_against_megatron_core(n_layer, std, num_layers, seed):
    layers = gpt(n_layer)
    L = num_layers or n_layer
    scheme = {"name": "megatron", "init_method_std": std, **({"num_layers": num_layers} if num_layers else {})}
    plan = plan_of({"architecture": {"layers": layers}, "scheme": scheme, "rng": "torch", "seed": seed})
    ours = {t.name: t.generate() for t in plan.selected}
    c = config(L, std)
    for methods in [(c.init_method, c.output_layer_init_method, c.embedding_init_method),
                    (init_method_normal(std), scaled_init_method_normal(std, L), init_method_normal(std))]:
        theirs = megatron_values(layers, seed, *methods)
        assert list(ours) == list(theirs)
        for name, v in theirs.items():
            assert np.array_equal(ours[name], v), name


@pytest.mark.parametrize("n_layer, std, num_layers", CASES)
def test_each_tensor_reports_megatrons_std(n_layer, std, num_layers):
    """The std each megatron-core function carries (its partial's keywords) is the std each tensor
    reports, exactly; the output layers' reason says the rule and the numbers."""
    L = num_layers or n_layer
    scheme = {"name": "megatron", "init_method_std": std, **({"num_layers": num_layers} if num_layers else {})}
    report = report_of(plan_of({"architecture": {"layers": gpt(n_layer)}, "scheme": scheme}))["tensors"]
    # this release's signature: (sigma, num_layers, multiplier=2.0), std = sigma / sqrt(multiplier * num_layers)
    assert str(inspect.signature(scaled_init_method_normal)) == "(sigma, num_layers, multiplier=2.0)"
    plain, scaled = init_method_normal(std).keywords, scaled_init_method_normal(std, L).keywords
    assert scaled["std"] != plain["std"]
    for t in report:
        s = t["scheme"]
        if t["role"] == "bias":
            assert (s["name"], s["chosen_by"]) == ("zeros", "megatron")
        elif t["role"].startswith("norm"):
            assert s["name"] in ("ones", "zeros") and s["chosen_by"] == "default"
        elif t.get("residual"):
            assert (s["name"], s["mean"], s["std"], s["chosen_by"]) == ("normal", scaled["mean"], scaled["std"], "megatron")
            assert f"N(0, ({std:g} / sqrt({2 * L}))^2)" in s["reason"] and "scaled_init_method_normal" in s["reason"]
            assert f"num_layers {L} (the {'scheme' if num_layers else 'model'}'s)" in s["reason"]
        else:
            assert (s["name"], s["mean"], s["std"], s["chosen_by"]) == ("normal", plain["mean"], plain["std"], "megatron")


def test_hf_config_takes_its_num_layers():
    """On an hf_config (Llama) num_layers is num_hidden_layers: o_proj and down_proj at the scaled std."""
    report = report_of(plan_of({**LLAMA_TINY, "scheme": "megatron"}))["tensors"]
    L = LLAMA_TINY["architecture"]["hf_config"]["num_hidden_layers"]
    scaled = scaled_init_method_normal(0.02, L).keywords["std"]
    stds = {t["name"]: t["scheme"].get("std") for t in report}
    for name, std in stds.items():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            assert std == scaled, name
        elif not name.endswith("norm.weight"):
            assert std == 0.02, name


def test_empirical_stds():
    """Drawn values: each weight's sample std is within 3% of megatron's."""
    plan = plan_of({"architecture": {"layers": gpt(4, e=64, vocab=512)}, "scheme": "megatron", "seed": 1})
    plain, scaled = init_method_normal(0.02).keywords["std"], scaled_init_method_normal(0.02, 4).keywords["std"]
    for t in plan.selected:
        if t.spec.role == "weight":
            want = scaled if t.spec.layer_role in ("attn_out", "mlp_out") else plain
            assert t.generate().std() == pytest.approx(want, rel=0.03), t.name


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


@pytest.mark.parametrize("scheme, field, message", [
    ({"name": "megatron", "init_method_std": 0}, "scheme.init_method_std", "must be > 0.0, got 0"),
    ({"name": "megatron", "num_layers": 0}, "scheme.num_layers", "must be >= 1, got 0"),
    ({"name": "megatron", "num_layers": 2.5}, "scheme.num_layers", "must be an integer, got 2.5"),
])
def test_bad_parameters_are_422(client, scheme, field, message):
    r = client.post("/v1/plan", json={"architecture": {"layers": gpt(1)}, "scheme": scheme})
    body = r.get_json()
    assert r.status_code == 422 and body["errors"] == {field: [message]}
