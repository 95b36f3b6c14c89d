"""``deepnorm`` against torchscale 0.3.0 (the DeepNet authors' library) on the same sizes.

torchscale builds its projections with PyTorch's default ``nn.Linear`` init (``MultiheadAttention.
reset_parameters`` is never called) and, with ``deepnorm=True``, divides some of them by an
``init_scale``: built twice from one seed, with and without deepnorm, each parameter of the first is
the second times torchscale's beta (1 where it divides nothing), exactly. So every weight's and bias's
std as torchscale draws it is that beta times 1/sqrt(3 fan_in), and each layer's alpha is an attribute.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from service.core import SpecError
from service.core.recipes import deepnorm
from service.core.recipes.stacks import SCALED, Stacks
from tests.helpers import plan_of
from tests.references import torchscale

ROLES = {"q_proj": "attn_qkv", "k_proj": "attn_qkv", "v_proj": "attn_v", "out_proj": "attn_out",
         "fc1": "mlp_in", "fc2": "mlp_out"}
D, FFN, HEADS = 16, 32, 2

#: name -> (model, N, M)
SIZES = {
    "encoder N=3": ("encoder", 3, None),
    "encoder N=12": ("encoder", 12, None),
    "decoder M=4": ("decoder", None, 4),
    "decoder M=18": ("decoder", None, 18),
    "encoder_decoder N=2 M=3": ("encoder_decoder", 2, 3),
    "encoder_decoder N=6 M=12": ("encoder_decoder", 6, 12),
}


def build(kind: str, n, m, deep: bool) -> nn.Module:
    """torchscale's model of this kind, seeded; deep=False: the same draws without DeepNet's division."""
    config = torchscale("config")
    flags = {"deepnorm": deep, "subln": False, "no_output_layer": True}
    torch.manual_seed(0)
    if kind == "encoder":
        return torchscale("encoder").Encoder(config.EncoderConfig(
            encoder_layers=n, encoder_embed_dim=D, encoder_ffn_embed_dim=FFN, encoder_attention_heads=HEADS, **flags))
    if kind == "decoder":
        return torchscale("decoder").Decoder(config.DecoderConfig(
            decoder_layers=m, decoder_embed_dim=D, decoder_ffn_embed_dim=FFN, decoder_attention_heads=HEADS, **flags))
    return torchscale("encoder_decoder").EncoderDecoder(config.EncoderDecoderConfig(
        encoder_layers=n, decoder_layers=m, encoder_embed_dim=D, decoder_embed_dim=D, encoder_ffn_embed_dim=FFN,
        decoder_ffn_embed_dim=FFN, encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, **flags))


def factor(a: torch.Tensor, b: torch.Tensor) -> float:
    """The c with a == c b (asserted elementwise)."""
    a, b = a.detach().double(), b.detach().double()
    c = float((a * b).sum() / (b * b).sum())
    assert torch.allclose(a, c * b, rtol=1e-5, atol=1e-7), "not a multiple"
    return c


def document(model: nn.Module, kind: str, n, m, convention: str) -> dict:
    """The model's linear layers with their roles; an encoder-decoder's layers name their stack."""
    scheme = {"name": "deepnorm", "model": kind, "convention": convention}
    if kind == "encoder_decoder":
        scheme.update(encoder_layers=n, decoder_layers=m)
    layers = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            layer = {"type": "dense", "name": name, "in_features": mod.in_features, "out_features": mod.out_features,
                     "role": ROLES[name.rsplit(".", 1)[1]]}
            if kind == "encoder_decoder":
                layer["scheme"] = {**scheme, "part": name.split(".", 1)[0]}
            layers.append(layer)
    return {"architecture": {"layers": layers}, "scheme": scheme}


def stack(kind: str, name: str, n, m) -> Stacks:
    part = name.split(".", 1)[0] if kind == "encoder_decoder" else kind
    return Stacks(kind, part, n, m, "")


@pytest.mark.parametrize("size", SIZES)
def test_every_weight_and_bias_has_torchscales_std(size):
    kind, n, m = SIZES[size]
    deep, plain = build(kind, n, m, True), build(kind, n, m, False)
    plan = plan_of(document(deep, kind, n, m, "torchscale"))
    ours = {t.name: t for t in plan.tensors}
    plain_params = dict(plain.named_parameters())
    checked = 0
    for name, p in deep.named_parameters():
        if "layer_norm" in name:
            continue
        fan_in = p.shape[1] if p.dim() == 2 else ours[name.rsplit(".", 1)[0] + ".weight"].spec.fan_in
        want = factor(p, plain_params[name]) / math.sqrt(3 * fan_in)
        t = ours[name]
        assert math.isclose(math.sqrt(t.distribution.variance()), want, rel_tol=2e-6), (name, t.reason)
        checked += 1
    assert checked == len(ours)


@pytest.mark.parametrize("size", SIZES)
def test_beta_is_the_papers_but_for_the_encoder_decoders_encoder(size):
    """torchscale divides the encoder of an encoder-decoder by (N^4 M)^(1/16) / 1.15: beta = 1.15 (N^4 M)^(-1/16),
    where the paper has 0.87 (N^4 M)^(-1/16) (Table 1); everywhere else the two agree."""
    kind, n, m = SIZES[size]
    deep, plain = build(kind, n, m, True), build(kind, n, m, False)
    plain_params = dict(plain.named_parameters())
    seen = set()
    for name, p in deep.named_parameters():
        if not name.endswith("v_proj.weight"):
            continue
        s = stack(kind, name, n, m)
        theirs = factor(p, plain_params[name])
        paper = deepnorm.constants(s, "paper")[1]
        assert math.isclose(deepnorm.constants(s, "torchscale")[1], theirs, rel_tol=2e-6)  # float32 draws
        odd = kind == "encoder_decoder" and s.part == "encoder"
        assert math.isclose(theirs / paper, 1.15 / 0.87 if odd else 1.0, rel_tol=2e-6), name
        seen.add(s.part)
    assert len(seen) == (2 if kind == "encoder_decoder" else 1)


@pytest.mark.parametrize("size", SIZES)
def test_alpha_is_torchscales(size):
    kind, n, m = SIZES[size]
    model = build(kind, n, m, True)
    stacks = [("encoder", model.encoder), ("decoder", model.decoder)] if kind == "encoder_decoder" else [(kind, model)]
    for part, module in stacks:
        s = Stacks(kind, part, n, m, "")
        for layer in module.layers:
            assert math.isclose(deepnorm.constants(s, "paper")[0], layer.alpha, rel_tol=1e-12)
            assert math.isclose(deepnorm.constants(s, "torchscale")[0], layer.alpha, rel_tol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_the_paper_convention_is_xavier_normal_with_gain_beta_and_reports_alpha(size):
    kind, n, m = SIZES[size]
    model = build(kind, n, m, True)
    plan = plan_of(document(model, kind, n, m, "paper"))
    for t in plan.tensors:
        alpha, beta, _, _ = deepnorm.constants(stack(kind, t.name, n, m), "paper")
        assert "alpha = " in t.reason and f"= {alpha:.6g} weights the residual" in t.reason
        if t.spec.role == "bias":
            assert t.scheme["name"] == "zeros"
            continue
        gain = beta if t.spec.layer_role in SCALED else 1.0
        xavier = gain * math.sqrt(2.0 / (t.spec.fan_in + t.spec.fan_out))
        assert math.isclose(math.sqrt(t.distribution.variance()), xavier, rel_tol=1e-12), t.reason
        assert t.scheme["name"] == "xavier_normal" and t.chosen_by == "deepnorm"
        assert "not a weight" in t.reason


def test_the_published_constants():
    """DeepNet Table 1 at N = M = 6 (the values are the formulas; a typo in one changes them)."""
    got = {(kind, part): deepnorm.constants(Stacks(kind, part, 6, 6, ""))[:2] for kind, part in (
        ("encoder", "encoder"), ("decoder", "decoder"), ("encoder_decoder", "encoder"), ("encoder_decoder", "decoder"))}
    want = {("encoder", "encoder"): (12 ** 0.25, 48 ** -0.25), ("decoder", "decoder"): (12 ** 0.25, 48 ** -0.25),
            ("encoder_decoder", "encoder"): (0.81 * 6 ** (5 / 16), 0.87 * 6 ** (-5 / 16)),
            ("encoder_decoder", "decoder"): (18 ** 0.25, 72 ** -0.25)}
    for key in want:
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got[key], want[key])), key


def test_an_attention_layer_scales_v_and_out_by_kind():
    doc = {"architecture": {"layers": [{"type": "attention", "name": "attn", "embed_dim": 16, "num_heads": 2,
                                        "role": "attn_out"}]}, "scheme": {"name": "deepnorm", "decoder_layers": 8}}
    beta = 64 ** -0.25
    for t in plan_of(doc).tensors:
        if t.spec.role == "weight":
            gain = beta if t.spec.kind in ("v", "out") else 1.0
            assert math.isclose(math.sqrt(t.distribution.variance()), gain * math.sqrt(2 / 32), rel_tol=1e-12), t.name


@pytest.mark.parametrize("scheme,field,words", [
    ({"name": "deepnorm", "model": "encoder_decoder", "encoder_layers": 2, "decoder_layers": 2}, "scheme.part",
     "needs part"),
    ({"name": "deepnorm", "model": "encoder_decoder", "part": "encoder", "encoder_layers": 2}, "scheme.decoder_layers",
     "needs decoder_layers"),
    ({"name": "deepnorm", "part": "encoder"}, "scheme.part", "a decoder-only model has no encoder"),
    ({"name": "deepnorm", "model": "encoder"}, "scheme.encoder_layers", "give encoder_layers"),
])
def test_missing_stacks_are_errors_naming_the_field(scheme, field, words):
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 4, "out_features": 4, "role": "mlp_in"}]},
           "scheme": scheme}
    with pytest.raises(SpecError) as e:
        plan_of(doc)
    assert e.value.field == field and words in e.value.message, e.value


def test_a_packed_qkv_is_an_error():
    doc = {"architecture": {"hf_config": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 64,
                                          "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 16}},
           "scheme": {"name": "deepnorm"}}
    with pytest.raises(SpecError) as e:
        plan_of(doc)
    assert "packs all three" in e.value.message


def test_an_hf_llama_scales_its_v_proj_not_q_and_k():
    doc = {"architecture": {"hf_config": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128, "hidden_size": 16,
        "intermediate_size": 32, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4}},
        "scheme": {"name": "deepnorm"}}
    by_name = {t.name: t for t in plan_of(doc).tensors}
    q, v = (by_name[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qv")
    ratio = math.sqrt(v.distribution.variance() / q.distribution.variance())
    assert math.isclose(ratio, 32 ** -0.25, rel_tol=1e-12) and "M = 4" in v.reason
