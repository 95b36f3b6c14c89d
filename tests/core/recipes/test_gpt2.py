"""``gpt2`` against transformers 5.23.0's GPT2PreTrainedModel._init_weights: the std of the last
``normal_`` transformers applies to each parameter (recorded while ``from_config`` initializes a GPT-2)
is the std each of our tensors reports, exactly, on a gpt2 hf_config and on the same model written as a
``layers`` document with roles; ``n_layer`` overrides; the reasons; ``GET /v1/schemes`` lists it."""

from __future__ import annotations

import math

import pytest

from service.core.recipes import REGISTRY
from tests.helpers import plan_of, problem_of, report_of

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed: bash scripts/test-deps.sh")
transformers = pytest.importorskip(
    "transformers", reason="transformers (test-only) is not installed: bash scripts/test-deps.sh installs 5.23.0")
from transformers import initialization  # noqa: E402

CONFIG = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 64, "n_positions": 16,
          "n_embd": 16, "n_layer": 3, "n_head": 2, "bos_token_id": 0, "eos_token_id": 0}


def transformers_rule(config: dict, monkeypatch) -> dict[str, tuple]:
    """Parameter name (as save_pretrained writes it) -> ("normal", std) of the last normal_ transformers'
    _init_weights applied to it, or ("zeros",) / ("ones",): recorded from a real from_config."""
    last: dict[int, tuple] = {}
    for name in ("normal_", "zeros_", "ones_"):
        original = initialization.TORCH_INIT_FUNCTIONS[name]

        def record(tensor, *args, _name=name, _original=original, **kw):
            last[tensor.data_ptr()] = ("normal", kw["std"]) if _name == "normal_" else (_name.rstrip("_"),)
            return _original(tensor, *args, **kw)
        monkeypatch.setitem(initialization.TORCH_INIT_FUNCTIONS, name, record)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel._from_config(transformers.AutoConfig.for_model(**config))
    return {n: last[p.data_ptr()] for n, p in model.named_parameters()}  # the tied lm_head is wte: listed once


def ours(report: dict) -> dict[str, tuple]:
    out = {}
    for t in report["tensors"]:
        s = t["scheme"]
        out[t["name"]] = ("normal", s["std"]) if s["name"] == "normal" else (s["name"],)
    return out


def layers_document(config: dict) -> list[dict]:
    """The same GPT-2 as a layers document: the hf_config's layers, their roles given by ``role``."""
    plan = plan_of({"architecture": {"hf_config": config}})
    return [{**layer.echo, "role": layer.role} for layer in plan.layers]


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_hf_config_follows_transformers(std, monkeypatch):
    config = {**CONFIG, "initializer_range": std}
    theirs = transformers_rule(config, monkeypatch)
    scheme = {"name": "gpt2", "std": std}
    mine = ours(report_of(plan_of({"architecture": {"hf_config": config}, "scheme": scheme})))
    assert mine == theirs
    scaled = std / math.sqrt(2 * config["n_layer"])
    assert sorted(n for n, v in theirs.items() if v == ("normal", scaled)) == sorted(
        f"transformer.h.{i}.{m}.c_proj.weight" for i in range(config["n_layer"]) for m in ("attn", "mlp"))


def test_layers_document_with_roles_follows_transformers(monkeypatch):
    theirs = transformers_rule(CONFIG, monkeypatch)
    layers = layers_document(CONFIG)
    assert {layer["role"] for layer in layers} >= {"attn_out", "mlp_out"}
    report = report_of(plan_of({"architecture": {"layers": layers}, "scheme": "gpt2"}))
    assert ours(report) == theirs
    residual = [t["name"] for t in report["tensors"] if t.get("residual")]
    assert len(residual) == 4 * CONFIG["n_layer"]  # weight and bias of 2 n_layer projections


def test_reasons_and_chosen_by():
    n = CONFIG["n_layer"]
    report = report_of(plan_of({"architecture": {"hf_config": CONFIG}, "scheme": "gpt2"}))
    for t in report["tensors"]:
        s = t["scheme"]
        if t["role"].startswith("norm"):
            assert s["chosen_by"] == "default"
            continue
        assert s["chosen_by"] == "gpt2"
        if t["role"] == "bias":
            assert s["reason"] == "gpt2: biases start at 0"
        elif t.get("residual"):
            assert s["reason"] == (f"gpt2: a residual branch's output projection, N(0, (std / sqrt(2 n_layer))^2) = "
                                   f"N(0, (0.02 / sqrt({2 * n}))^2), std {0.02 / math.sqrt(2 * n):.6g}, with n_layer "
                                   f"{n} (the model's): the stream sums 2 n_layer branches")
        else:
            assert s["reason"] == "gpt2: N(0, std^2), std 0.02"


@pytest.mark.parametrize("document", ["hf_config", "layers"])
def test_n_layer_overrides_the_models(document):
    arch = {"hf_config": CONFIG} if document == "hf_config" else {"layers": layers_document(CONFIG)}
    report = report_of(plan_of({"architecture": arch, "scheme": {"name": "gpt2", "n_layer": 24}}))
    t = next(t for t in report["tensors"] if t["name"].endswith("h.1.attn.c_proj.weight"))
    assert t["scheme"]["std"] == 0.02 / math.sqrt(48)
    assert "with n_layer 24 (the scheme's)" in t["scheme"]["reason"]


def test_no_residual_role_scales_nothing():
    layers = [{k: v for k, v in layer.items() if k != "role"} for layer in layers_document(CONFIG)]
    report = report_of(plan_of({"architecture": {"layers": layers}, "scheme": "gpt2"}))
    weights = [t for t in report["tensors"] if t["role"] == "weight"]
    assert {t["scheme"]["std"] for t in weights} == {0.02}
    assert all("nothing is depth-scaled" in t["scheme"]["reason"] for t in weights)


@pytest.mark.parametrize("scheme, field, message", [
    ({"name": "gpt2", "n_layer": 0}, "scheme.n_layer", "must be >= 1, got 0"),
    ({"name": "gpt2", "std": -1}, "scheme.std", "must be > 0.0, got -1"),
])
def test_bad_parameters(scheme, field, message):
    assert problem_of({"architecture": {"hf_config": CONFIG}, "scheme": scheme})[:2] == (field, message)


def test_schemes_lists_the_recipes():
    from service import create_app
    client = create_app().test_client()
    body = client.get("/v1/schemes").get_json()
    listed = {s["name"]: s for s in body["schemes"]}
    for name in ("gpt2", "nanogpt", "megatron"):
        assert listed[name] == REGISTRY[name].scheme.describe()
        assert listed[name]["family"] == "recipe" and listed[name]["paper"] and listed[name]["formula"]
    assert [p["name"] for p in listed["gpt2"]["parameters"]] == ["std", "n_layer"]
    assert client.get("/v1/schemes/gpt2").get_json() == listed["gpt2"]
