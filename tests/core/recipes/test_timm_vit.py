"""``timm_vit`` against timm 1.0.31's ``VisionTransformer`` (default ``weight_init``: ``init_weights`` and
``init_weights_vit_timm``), parameter by parameter.

The reference is what timm itself calls: while a small ViT (class and register tokens, two blocks) is
built, every ``torch.nn.init`` function and timm's ``trunc_normal_`` are wrapped to record their
arguments; each parameter's last call is the distribution it was drawn from (a Linear's constructor
``kaiming_uniform_`` is overwritten by ``trunc_normal_``; the patch embedding's Conv2d keeps its
constructor's). Our plan of the same layers, with their roles, must name the same distribution with
the same parameters (std, absolute bounds); then the values: ours and timm's both match that std.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

from service import create_app

from tests.api.conftest import app, check_openapi, openapi, spec_dict  # noqa: F401  (fixtures)
from tests.api.helpers import assert_problem
from tests.helpers import plan_of
from tests.references import timm

D, DEPTH, HEADS, MLP, CLASSES, PATCH, IMG = 32, 2, 4, 2, 10, 4, 16
TOKENS = 1 + 1 + (IMG // PATCH) ** 2  # class + register + patches


def recorded_vit(monkeypatch):
    """(timm's ViT, {parameter name: (the init call that last wrote it, its bound arguments)})."""
    vt = timm().models.vision_transformer
    calls: dict[int, tuple[str, dict]] = {}

    def wrap(owner, name, label):
        orig = getattr(owner, name)
        sig = inspect.signature(orig)

        def recording(tensor, *args, **kwargs):
            bound = sig.bind(tensor, *args, **kwargs)
            bound.apply_defaults()
            calls[id(tensor)] = (label, {k: v for k, v in bound.arguments.items() if k != "tensor"})
            return orig(tensor, *args, **kwargs)
        monkeypatch.setattr(owner, name, recording)

    for fn in ("normal_", "zeros_", "ones_", "uniform_", "kaiming_uniform_", "trunc_normal_", "constant_",
               "xavier_uniform_", "kaiming_normal_"):
        wrap(torch.nn.init, fn, fn)
    wrap(vt, "trunc_normal_", "timm.trunc_normal_")
    torch.manual_seed(0)
    model = vt.VisionTransformer(img_size=IMG, patch_size=PATCH, in_chans=3, num_classes=CLASSES, embed_dim=D,
                                 depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP, reg_tokens=1)
    return model, {n: calls[id(p)] for n, p in model.named_parameters()}


def expected(call: str, kw: dict, tensor) -> tuple[str, dict]:
    """The distribution (our report's name and parameters) an init call draws from."""
    if call in ("timm.trunc_normal_", "trunc_normal_"):
        return "truncated_normal", {"mean": kw["mean"], "std": kw["std"], "low": kw["a"], "high": kw["b"]}
    if call == "normal_":
        return "normal", {"mean": kw["mean"], "std": kw["std"]}
    if call in ("zeros_", "ones_"):
        return "constant", {"value": 0.0 if call == "zeros_" else 1.0}
    if call == "uniform_":
        return "uniform", {"low": kw["a"], "high": kw["b"]}
    if call == "kaiming_uniform_":
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
        bound = torch.nn.init.calculate_gain(kw["nonlinearity"], kw["a"]) * math.sqrt(3.0 / fan_in)
        return "uniform", {"low": -bound, "high": bound}
    raise AssertionError(f"timm called {call}, which the test does not translate")


def dense(name, cin, cout, role):
    return {"type": "dense", "name": name, "in_features": cin, "out_features": cout, "role": role}


def layers() -> list:
    out = [{"type": "tensor", "name": "cls_token", "shape": [1, 1, D], "role": "cls_token"},
           {"type": "tensor", "name": "reg_token", "shape": [1, 1, D], "role": "cls_token"},
           {"type": "tensor", "name": "pos_embed", "shape": [1, TOKENS, D], "role": "position_embedding"},
           {"type": "conv2d", "name": "patch_embed_proj", "in_channels": 3, "out_channels": D, "kernel_size": PATCH,
            "role": "patch_embedding"}]
    for i in range(DEPTH):
        b = f"blocks_{i}_"
        out += [{"type": "layernorm", "name": b + "norm1", "normalized_shape": [D]},
                dense(b + "attn_qkv", D, 3 * D, "attn_qkv"), dense(b + "attn_proj", D, D, "attn_out"),
                {"type": "layernorm", "name": b + "norm2", "normalized_shape": [D]},
                dense(b + "mlp_fc1", D, MLP * D, "mlp_in"), dense(b + "mlp_fc2", MLP * D, D, "mlp_out")]
    return out + [{"type": "layernorm", "name": "norm", "normalized_shape": [D]}, dense("head", D, CLASSES, "readout")]


def ours(timm_name: str) -> str:
    """timm's parameter name -> ours (module path with '_', then the tensor's own name)."""
    if "." not in timm_name:
        return timm_name
    module, _, leaf = timm_name.rpartition(".")
    return f"{module.replace('.', '_')}.{leaf}"


@pytest.fixture(scope="module")
def reference():
    with pytest.MonkeyPatch.context() as mp:
        return recorded_vit(mp)


@pytest.fixture(scope="module")
def plan():
    return plan_of({"architecture": {"layers": layers()}, "scheme": "timm_vit", "seed": 3, "dtype": "float64"})


def test_every_parameter_has_timms_distribution(reference, plan):
    model, calls = reference
    params = dict(model.named_parameters())
    by = {t.name: t for t in plan.tensors}
    assert sorted(ours(n) for n in params) == sorted(by)
    for name, (call, kw) in calls.items():
        dist, parameters = expected(call, kw, params[name])
        th = by[ours(name)].theory()
        assert th["distribution"] == dist, name
        assert th["parameters"] == pytest.approx(parameters, rel=1e-12), (name, call, kw)
        if th["scheme"]["chosen_by"] != "default":  # norms keep 1 and 0 by the engine's own rule
            assert th["scheme"]["chosen_by"] == "timm_vit", name


def test_the_calls_are_timms_own(reference):
    _, calls = reference
    assert calls["pos_embed"] == ("timm.trunc_normal_", {"mean": 0.0, "std": 0.02, "a": -2.0, "b": 2.0})
    assert calls["cls_token"][0] == "normal_" and calls["cls_token"][1]["std"] == 1e-6
    assert calls["blocks.0.attn.qkv.weight"][0] == "timm.trunc_normal_"
    assert calls["patch_embed.proj.weight"] == ("kaiming_uniform_", {"a": math.sqrt(5), "mode": "fan_in",
                                                                      "nonlinearity": "leaky_relu", "generator": None})


def test_the_values_match_timms_statistics(reference, plan):
    model, _ = reference
    by = {t.name: t for t in plan.tensors}
    for name, p in model.named_parameters():
        t = by[ours(name)]
        theirs = p.detach().double().numpy().reshape(-1)
        mine = t.generate().reshape(-1)
        th = t.theory()
        if th["variance"] == 0:
            assert np.all(mine == th["mean"]) and np.all(theirs == th["mean"]), name
            continue
        tolerance = 5 / math.sqrt(2 * theirs.size)  # five standard errors of a sample std
        for values in (mine, theirs):
            assert values.std() == pytest.approx(th["std"], rel=tolerance), name
            assert th["bounds"] is None or th["bounds"][0] <= values.min() <= values.max() <= th["bounds"][1]


def test_the_reasons_state_the_rule_and_numbers(plan):
    by = {t.name: t for t in plan.tensors}
    assert by["pos_embed"].reason == ("timm_vit: pos_embed trunc_normal_(std=0.02, a=-2, b=2) (absolute bounds: "
                                      "100 std, in effect untruncated)")
    assert by["cls_token"].reason == "timm_vit: cls_token / reg_token normal_(std=1e-06)"
    assert "U[+-1/sqrt(fan_in)], fan_in 48" in by["patch_embed_proj.weight"].reason
    assert by["head.bias"].reason == "timm_vit: nn.Linear biases zeros_"


def test_bad_parameters_and_unknown_tensors_are_422s():
    c = create_app().test_client()
    base = {"architecture": {"layers": layers()[:3]}}
    for std, bound in ((0, "must be > 0.0"), (1.5, "must be <= 1.0")):
        p = assert_problem(c.post("/v1/weights", json={**base, "scheme": {"name": "timm_vit", "std": std}}), 422,
                           "invalid-document")
        assert list(p["errors"]) == ["scheme.std"] and bound in p["errors"]["scheme.std"][0], p
    raw = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [4, 4]}]}, "scheme": "timm_vit"}
    p = assert_problem(c.post("/v1/plan", json=raw), 422, "invalid-document")
    assert list(p["errors"]) == ["scheme"] and "role cls_token or position_embedding" in p["errors"]["scheme"][0]


@pytest.fixture
def client(request):
    return request.getfixturevalue("app").test_client()


def test_the_plan_answer_validates_against_openapi(client, request):
    check = request.getfixturevalue("check_openapi")
    body = {"architecture": {"layers": layers()}, "scheme": "timm_vit"}
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    check({"path": "/v1/plan", "method": "POST", "json": body}, r)
