"""auto, torch_default and keras_default pick per tensor, and say why."""

import math

import pytest

from tests.helpers import plan_of
from tests.helpers import MLP, ZOO


def _theory(doc):
    return {t.name: t.theory() for t in plan_of(doc).selected}


@pytest.mark.parametrize("activation,scheme", [
    ("tanh", "xavier_uniform"), ("sigmoid", "xavier_uniform"), ("softmax", "xavier_uniform"),
    ("linear", "xavier_uniform"), (None, "xavier_uniform"), ("relu", "he_normal"), ("elu", "he_normal"),
    ("gelu", "he_normal"), ("silu", "he_normal"), ("leaky_relu", "he_normal"), ("selu", "lecun_normal"),
])
def test_auto_follows_the_rules_of_thumb(activation, scheme):
    layer = {"type": "dense", "name": "l", "in_features": 100, "out_features": 50}
    if activation:
        layer["activation"] = activation
    th = _theory({"architecture": {"layers": [layer]}})["l.weight"]
    assert th["scheme"]["name"] == scheme and th["scheme"]["chosen_by"] == "auto"
    assert scheme.split("_")[0].lower() in th["scheme"]["reason"].lower() or scheme in th["scheme"]["reason"]
    assert th["warnings"] == []


def test_auto_leaky_slope():
    layer = {"type": "dense", "name": "l", "in_features": 100, "out_features": 50,
             "activation": {"name": "leaky_relu", "negative_slope": 0.2}}
    th = _theory({"architecture": {"layers": [layer]}})["l.weight"]
    assert th["scheme"]["negative_slope"] == 0.2
    assert math.isclose(th["target_variance"], 2 / (1.04 * 100))


def test_plan_layers_summarize_the_choice():
    plan = plan_of(MLP)
    summary = plan.layer_summary()
    assert [s["scheme"] for s in summary] == ["he_normal", "xavier_uniform", "xavier_uniform"]
    assert all(s["reason"] for s in summary)


def test_layer_scheme_overrides_request():
    doc = {"architecture": {"layers": [
        {"type": "dense", "name": "a", "in_features": 4, "out_features": 4, "scheme": "orthogonal", "bias": "ones"},
        {"type": "dense", "name": "b", "in_features": 4, "out_features": 4, "bias": False}]}, "scheme": "he_uniform"}
    th = _theory(doc)
    assert th["a.weight"]["scheme"]["name"] == "orthogonal" and th["a.weight"]["scheme"]["chosen_by"] == "layer"
    assert th["a.bias"]["distribution"] == "constant" and th["a.bias"]["mean"] == 1.0
    assert th["b.weight"]["scheme"]["name"] == "he_uniform" and "b.bias" not in th


def test_request_bias_false_drops_biases_but_not_norms():
    th = _theory({**ZOO, "bias": False})
    assert not any(n.endswith(("bias", "bias_ih", "bias_hh")) and not n.startswith(("bn", "ln")) for n in th)
    assert "bn.bias" in th


def test_torch_default():
    th = _theory({**ZOO, "scheme": "torch_default"})
    b = 1 / math.sqrt(784)
    assert th["fc1.weight"]["bounds"] == pytest.approx([-b, b], rel=1e-6)
    assert th["fc1.bias"]["bounds"] == pytest.approx([-b, b], rel=1e-6)
    h = 1 / math.sqrt(32)
    for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert th[f"lstm.{n}"]["bounds"] == pytest.approx([-h, h], rel=1e-6)
    assert th["emb.weight"]["distribution"] == "normal" and th["emb.weight"]["std"] == 1.0
    a = math.sqrt(6 / (4 * 16))
    assert th["attn.q_proj.weight"]["bounds"] == pytest.approx([-a, a], rel=1e-6)
    assert th["attn.q_proj.bias"]["mean"] == 0 and th["attn.q_proj.bias"]["variance"] == 0
    assert th["attn.out_proj.weight"]["bounds"] == pytest.approx([-0.25, 0.25], rel=1e-6)
    assert th["bn.weight"]["mean"] == 1.0 and th["bn.bias"]["mean"] == 0.0
    # PyTorch's default under-scales ReLU layers by 6x relative to He: the warning says so.
    assert th["fc1.weight"]["warnings"][0]["code"] == "vanishing"


def test_keras_default():
    th = _theory({**ZOO, "scheme": "keras_default", "layout": "keras"})
    assert th["fc1.weight"]["scheme"]["name"] == "xavier_uniform" and th["fc1.bias"]["variance"] == 0
    assert th["lstm.weight_hh"]["distribution"] == "orthogonal"
    assert th["lstm.bias_ih"]["distribution"] == "lstm_forget_bias" and th["lstm.bias_hh"]["mean"] == 0
    assert th["emb.weight"]["bounds"] == pytest.approx([-0.05, 0.05])
    plan = plan_of({**ZOO, "scheme": "keras_default", "layout": "keras", "tensors": ["lstm.bias_ih"]})
    v = plan.selected[0].generate()
    assert (v[32:64] == 1).all() and (v[:32] == 0).all() and (v[64:] == 0).all()


@pytest.mark.parametrize("scheme,activation,code", [
    ("zeros", "relu", "symmetric"), ({"name": "constant", "value": 0.3}, "tanh", "symmetric"),
    ({"name": "normal", "std": 0.01}, "tanh", "vanishing"), ({"name": "normal", "std": 1.0}, "tanh", "exploding"),
    ("xavier_uniform", "relu", None), ({"name": "normal", "std": 0.001}, "relu", "vanishing"),
    ("he_normal", "relu", None), ("xavier_normal", "tanh", None),
])
def test_warnings_for_the_classic_failure_modes(scheme, activation, code):
    doc = {"architecture": {"layers": [{"type": "dense", "name": "l", "in_features": 256, "out_features": 256,
                                        "activation": activation}]}, "scheme": scheme}
    warns = _theory(doc)["l.weight"]["warnings"]
    assert [w["code"] for w in warns] == ([code] if code else [])
    assert all(w["message"] for w in warns)
