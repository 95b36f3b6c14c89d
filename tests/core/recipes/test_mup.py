"""``mup`` against the mup package 1.0.0: set_base_shapes + mup.init on an MLP and a small transformer
(written here) at two widths, each weight's std as mup.init draws it equal to the plan's.

mup.init draws with torch's samplers (``normal_(0, std)``, ``uniform_(-b, b)``), whose values are the
unit draw of the same seed times std (or b): re-seeding and drawing the unit tensor gives the factor
mup used, to float32 rounding (not a sample estimate).
"""

from __future__ import annotations

import math

import mup
import pytest
import torch
from mup import MuReadout, set_base_shapes
from torch import nn

from service.core import SpecError
from service.core.recipes import mup as recipe
from tests.helpers import plan_of

BASE, DELTA = 16, 32
WIDTHS = (16, 64)  # the base width itself (mup is then the base scheme) and 4x it


class MLP(nn.Module):
    ROLES = {"fc1": "input", "fc2": "hidden", "fc3": "hidden", "readout": "readout"}

    def __init__(self, w: int, readout_zero_init: bool = False):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(8, w), nn.Linear(w, w), nn.Linear(w, 2 * w)
        self.readout = MuReadout(2 * w, 4, readout_zero_init=readout_zero_init)


class Transformer(nn.Module):
    """One block of a pre-LN transformer (norms left out: they start at 1 and 0 in both)."""

    ROLES = {"emb": "embedding", "q": "attn_qkv", "k": "attn_qkv", "v": "attn_v", "o": "attn_out",
             "fc1": "mlp_in", "fc2": "mlp_out", "readout": "readout"}

    def __init__(self, d: int, readout_zero_init: bool = False):
        super().__init__()
        self.emb = nn.Embedding(40, d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.readout = MuReadout(d, 40, readout_zero_init=readout_zero_init)


def mup_model(cls, w: int, **kw) -> nn.Module:
    model = cls(w, **kw)
    set_base_shapes(model, cls(BASE, **kw), delta=cls(DELTA, **kw))
    return model


def document(model: nn.Module, scheme: dict) -> dict:
    layers = []
    for name, m in model.named_children():
        if isinstance(m, nn.Embedding):
            layers.append({"type": "embedding", "name": name, "num_embeddings": m.num_embeddings,
                           "embedding_dim": m.embedding_dim, "role": model.ROLES[name]})
        else:
            layers.append({"type": "dense", "name": name, "in_features": m.in_features,
                           "out_features": m.out_features, "role": model.ROLES[name]})
    return {"architecture": {"layers": layers}, "scheme": scheme}


#: our init parameters -> (the mup.init function, its arguments, whether it samples uniformly)
INITS = {
    "normal std 0.02": ({"init": "normal", "std": 0.02}, mup.init.normal_, {"std": 0.02}, False),
    "normal std 1": ({"init": "normal", "std": 1.0}, mup.init.normal_, {"std": 1.0}, False),
    "xavier_normal gain 0.5": ({"init": "xavier_normal", "gain": 0.5}, mup.init.xavier_normal_, {"gain": 0.5}, False),
    "xavier_uniform": ({"init": "xavier_uniform"}, mup.init.xavier_uniform_, {}, True),
    "kaiming_normal a 0.1": ({"init": "kaiming_normal", "negative_slope": 0.1}, mup.init.kaiming_normal_,
                             {"a": 0.1}, False),
    "kaiming_uniform fan_out": ({"init": "kaiming_uniform", "mode": "fan_out"}, mup.init.kaiming_uniform_,
                                {"mode": "fan_out"}, True),
}


def drawn_std(p: torch.Tensor, init, kwargs: dict, uniform: bool) -> float:
    """The std mup.init draws ``p`` with: its values are the unit draw of the same seed times a factor."""
    torch.manual_seed(7)
    init(p, **kwargs)
    got = p.detach().double()
    torch.manual_seed(7)
    unit = torch.empty_like(p)
    (unit.uniform_(-1, 1) if uniform else unit.normal_(0, 1))
    unit = unit.double()
    factor = float((got * unit).sum() / (unit * unit).sum())
    assert torch.allclose(got, factor * unit, rtol=1e-5, atol=1e-6 * factor), "not a scaled unit draw"
    return factor / math.sqrt(3.0) if uniform else factor


@pytest.mark.parametrize("cls", [MLP, Transformer], ids=["mlp", "transformer"])
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("init", INITS)
def test_every_weight_has_the_std_mup_init_draws(cls, width, init):
    ours, fn, kwargs, uniform = INITS[init]
    model = mup_model(cls, width)
    plan = plan_of(document(model, {"name": "mup", "base_width": BASE, "width": width, **ours}))
    tensors = {t.name: t for t in plan.tensors}
    checked = 0
    for name, p in model.named_parameters():
        if not name.endswith("weight"):
            continue
        t = tensors[name]
        want = drawn_std(p, fn, kwargs, uniform)
        assert math.isclose(math.sqrt(t.resolved.target_variance), want, rel_tol=2e-6), (name, t.reason)
        assert math.isclose(math.sqrt(t.distribution.variance()), want, rel_tol=2e-6), name
        assert t.chosen_by == "mup" and t.spec.layer_role == cls.ROLES[name.split(".")[0]]
        checked += 1
    assert checked == len(cls.ROLES)


@pytest.mark.parametrize("cls", [MLP, Transformer], ids=["mlp", "transformer"])
def test_the_readout_starts_at_zero_as_mureadout_does_with_readout_zero_init(cls):
    model = mup_model(cls, 64, readout_zero_init=True)
    assert not model.readout.weight.any() and not model.readout.bias.any()
    plan = plan_of(document(model, {"name": "mup", "base_width": BASE, "width": 64, "readout_zero_init": True}))
    t = next(t for t in plan.tensors if t.name == "readout.weight")
    assert t.scheme["name"] == "zeros" and not t.generate().any()


def test_the_reason_gives_mureadouts_output_multiplier():
    model = mup_model(Transformer, 64)
    plan = plan_of(document(model, {"name": "mup", "base_width": BASE, "width": 64}))
    reason = next(t.reason for t in plan.tensors if t.name == "readout.weight")
    assert model.readout.width_mult() == 4.0
    assert "output_mult / width_mult = 1/4 in the forward pass" in reason, reason


def test_biases_start_at_zero():
    plan = plan_of(document(MLP(32), {"name": "mup", "base_width": BASE, "width": 32}))
    assert all(t.scheme["name"] == "zeros" for t in plan.tensors if t.spec.role == "bias")


def test_an_hf_config_gives_the_width():
    doc = {"architecture": {"hf_config": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}},
        "scheme": {"name": "mup", "base_width": 16}}
    by_name = {t.name: t for t in plan_of(doc).tensors}
    q = by_name["model.layers.0.self_attn.q_proj.weight"]
    assert math.isclose(q.distribution.std, 0.02 / 2, rel_tol=1e-12), q.reason
    assert "64 / 16 (the model's width) = 4" in q.reason
    assert math.isclose(by_name["model.embed_tokens.weight"].distribution.std, 0.02)


@pytest.mark.parametrize("doc,field,words", [
    (document(MLP(32), {"name": "mup", "base_width": BASE}), "scheme.width", "give the model's width"),
    ({"architecture": {"layers": [{"type": "dense", "in_features": 4, "out_features": 4}]},
      "scheme": {"name": "mup", "base_width": 4, "width": 4}}, "architecture.layers.0.role", "initializes by role"),
    ({"architecture": {"layers": [{"type": "tensor", "name": "cls", "shape": [1, 1, 8], "role": "cls_token"}]},
      "scheme": {"name": "mup", "base_width": 4, "width": 8, "init": "xavier_normal"}}, "scheme.init", "takes init normal"),
    ({"architecture": {"layers": [{"type": "tensor", "name": "pos", "shape": [1, 4, 8], "role": "position_embedding"}]},
      "scheme": {"name": "mup", "base_width": 4, "width": 8, "init": "kaiming_normal"}}, "scheme.init",
     "of shape [1, 4, 8] takes init normal"),
])
def test_what_mup_cannot_do_is_an_error_naming_the_field(doc, field, words):
    with pytest.raises(SpecError) as e:
        plan_of(doc)
    assert e.value.field == field and words in e.value.message, e.value


def test_the_scheme_names_its_reference():
    assert "mup 1.0.0" in recipe.RECIPE.reference and recipe.RECIPE.scheme.family == "recipe"
