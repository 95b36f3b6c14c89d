"""``t_fixup`` against T-Fixup's Algorithm 2 (Huang et al. 2020) and against the authors' code
(layer6ai-labs/T-Fixup: fairseq's init, then ``fixup_initialization`` and the embeddings' scaling), both
written here over a fairseq-style encoder-decoder, each weight's std read from the torch calls they make.

Algorithm 2:
1. Xavier for every parameter but the input embeddings; N(0, d^-1/2) for the input embeddings (a std, as
   the authors' fairseq code draws it).
2. Scale the decoder's v and w (attention value and output) and MLP weights, and the input embeddings,
   by (9M)^(-1/4) (the paper: (9N)^(-1/4) for both stacks, N = M; the code: each stack by its own depth).
3. Scale the encoder's v, w and MLP weights by 0.67 N^(-1/4).
"""

from __future__ import annotations

import math

import pytest
from torch import nn

from service.core import SpecError
from tests.helpers import plan_of

D, FFN, VOCAB = 16, 32, 50
ROLES = {"q_proj": "attn_qkv", "k_proj": "attn_qkv", "v_proj": "attn_v", "out_proj": "attn_out", "fc1": "mlp_in",
         "fc2": "mlp_out", "embed_tokens": "embedding", "output_projection": "readout"}


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(D, D) for _ in range(4))


class Layer(nn.Module):
    def __init__(self, cross: bool):
        super().__init__()
        self.self_attn = Attention()
        if cross:
            self.encoder_attn = Attention()
        self.fc1, self.fc2 = nn.Linear(D, FFN), nn.Linear(FFN, D)


class Stack(nn.Module):
    def __init__(self, layers: int, decoder: bool):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, D)
        self.layers = nn.ModuleList(Layer(decoder) for _ in range(layers))
        if decoder:
            self.output_projection = nn.Linear(D, VOCAB, bias=False)


class EncoderDecoder(nn.Module):
    def __init__(self, n: int, m: int):
        super().__init__()
        self.encoder, self.decoder = Stack(n, False), Stack(m, True)


def recorder(monkeypatch) -> dict:
    """id(tensor) -> the std torch's xavier_uniform_ / normal_ draws it with, for every call from now on."""
    drawn = {}
    xavier, normal = nn.init.xavier_uniform_, nn.init.normal_

    def record_xavier(w, gain=1.0):
        fan_out, fan_in = w.shape
        drawn[id(w)] = gain * math.sqrt(2.0 / (fan_in + fan_out))  # torch's xavier_uniform_ std
        return xavier(w, gain)

    def record_normal(w, mean=0.0, std=1.0):
        drawn[id(w)] = std
        return normal(w, mean, std)

    monkeypatch.setattr(nn.init, "xavier_uniform_", record_xavier)
    monkeypatch.setattr(nn.init, "normal_", record_normal)
    return drawn


def stds(model: EncoderDecoder, drawn: dict, scale) -> dict:
    """Each weight's std after ``p.mul_(scale(name))``."""
    out = {}
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            p.data.mul_(scale(name))
            out[name] = drawn[id(p)] * scale(name)
    return out


VW_MLP = ("v_proj", "out_proj", "fc1", "fc2")


def algorithm_2(model: EncoderDecoder, n: int, m: int, monkeypatch) -> dict:
    """T-Fixup as the paper's Algorithm 2 states it; the std of every weight it draws."""
    drawn = recorder(monkeypatch)
    for name, p in model.named_parameters():  # step 1
        if "embed_tokens" in name:
            nn.init.normal_(p, 0, D ** -0.5)
        elif p.dim() > 1:
            nn.init.xavier_uniform_(p)

    def scale(name: str) -> float:
        depth = 9 * (n if name.startswith("encoder") else m)
        if "embed_tokens" in name or (name.startswith("decoder") and any(k in name for k in VW_MLP)):  # step 2
            return depth ** -0.25
        if name.startswith("encoder") and any(k in name for k in VW_MLP):  # step 3
            return 0.67 * n ** -0.25
        return 1.0
    return stds(model, drawn, scale)


def authors_code(model: EncoderDecoder, n: int, m: int, monkeypatch) -> dict:
    """What the authors' fairseq runs with --Tfixup: fairseq's inits (MultiheadAttention: q, k, v xavier_uniform_
    gain 1/sqrt(2), out_proj gain 1; Linear: xavier_uniform_; Embedding and an untied embed_out: normal std
    d^-1/2), then each stack's embeddings x (9 layers)^(-1/4) and its layers' fixup_initialization."""
    drawn = recorder(monkeypatch)
    for name, p in model.named_parameters():
        if "embed_tokens" in name or "output_projection" in name:
            nn.init.normal_(p, mean=0, std=D ** -0.5)
        elif any(k in name for k in ("q_proj", "k_proj", "v_proj")) and p.dim() > 1:
            nn.init.xavier_uniform_(p, gain=1 / math.sqrt(2))
        elif p.dim() > 1:
            nn.init.xavier_uniform_(p)

    def scale(name: str) -> float:
        if name.startswith("encoder"):
            base, factor = (9 * n) ** (-1 / 4), 0.67 * n ** (-1. / 4.)
        else:
            base, factor = (9 * m) ** (-1 / 4), (9 * m) ** (-1. / 4.)
        if "embed_tokens" in name:
            return base
        if name.endswith(("fc1.weight", "fc2.weight", "out_proj.weight")):
            return factor
        if name.endswith("v_proj.weight"):
            return factor * 2 ** 0.5
        return 1.0
    return stds(model, drawn, scale)


def document(model: EncoderDecoder, n: int, m: int, convention: str = "paper") -> dict:
    scheme = {"name": "t_fixup", "model": "encoder_decoder", "encoder_layers": n, "decoder_layers": m,
              "convention": convention}
    layers = []
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.Embedding, nn.Linear)):
            continue
        own = {"name": name, "role": ROLES[name.rsplit(".", 1)[1]], "scheme": {**scheme, "part": name.split(".", 1)[0]}}
        if isinstance(mod, nn.Embedding):
            layers.append({"type": "embedding", "num_embeddings": VOCAB, "embedding_dim": D, **own})
        else:
            layers.append({"type": "dense", "in_features": mod.in_features, "out_features": mod.out_features,
                           **({} if mod.bias is not None else {"bias": False}), **own})
    return {"architecture": {"layers": layers}, "scheme": scheme}


@pytest.mark.parametrize("n,m", [(6, 6), (3, 9), (12, 2)])
@pytest.mark.parametrize("convention,reference", [("paper", algorithm_2), ("authors", authors_code)])
def test_every_weight_has_the_references_std(n, m, convention, reference, monkeypatch):
    model = EncoderDecoder(n, m)
    theirs = reference(model, n, m, monkeypatch)
    ours = {t.name: t for t in plan_of(document(model, n, m, convention)).tensors}
    for name, want in theirs.items():
        t = ours[name]
        assert math.isclose(math.sqrt(t.distribution.variance()), want, rel_tol=1e-12), (name, t.reason)
        assert t.chosen_by == "t_fixup"
    assert len(theirs) == 2 + n * 6 + m * 10 + 1
    assert all(t.scheme["name"] == "zeros" for t in ours.values() if t.spec.role == "bias")


def test_the_reasons_state_the_factors():
    model = EncoderDecoder(16, 4)
    ours = {t.name: t for t in plan_of(document(model, 16, 4)).tensors}
    assert "0.67 N^(-1/4), N = 16 = 0.335" in ours["encoder.layers.0.fc1.weight"].reason
    assert "(9M)^(-1/4), M = 4 = 0.408248" in ours["decoder.layers.0.encoder_attn.v_proj.weight"].reason
    assert "Xavier (xavier_uniform, gain 1)" in ours["decoder.layers.0.self_attn.q_proj.weight"].reason


def test_an_encoder_decoder_needs_each_layers_part():
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 4, "out_features": 4, "role": "mlp_in"}]},
           "scheme": {"name": "t_fixup", "encoder_layers": 2, "decoder_layers": 2}}
    with pytest.raises(SpecError) as e:
        plan_of(doc)
    assert e.value.field == "scheme.part"
