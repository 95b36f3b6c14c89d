"""``nanogpt`` under ``rng: "torch"``: bit for bit what a model with nanoGPT's structure and init calls
holds after ``torch.manual_seed(seed)`` (Karpathy's model.py: its constructors, ``self.apply(
self._init_weights)``, then the ``c_proj.weight`` re-draw), written out below; its values' law and
reasons; the tie's validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service import create_app
from tests.helpers import plan_of, problem_of, report_of

torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed: bash scripts/test-deps.sh")
nn = torch.nn


# ----------------------------------------------------------------- nanoGPT's model.py (its structure and init)
class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
        self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
        self.attn_dropout = nn.Dropout(0.0)
        self.resid_dropout = nn.Dropout(0.0)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])
        self.dropout = nn.Dropout(0.0)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c["n_embd"], bias=c["bias"])
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c["n_embd"], bias=c["bias"])
        self.mlp = MLP(c)


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c["vocab_size"], c["n_embd"]),
            wpe=nn.Embedding(c["block_size"], c["n_embd"]),
            drop=nn.Dropout(0.0),
            h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
            ln_f=LayerNorm(c["n_embd"], bias=c["bias"]),
        ))
        self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c["n_layer"]))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)


# ----------------------------------------------------------------- the same model as a layers document
def document(c: dict, seed: int, **scheme) -> dict:
    """nanoGPT's modules as a layers document, named as its state_dict names them (lm_head left out: tied)."""
    e, bias = c["n_embd"], c["bias"]
    norm = {"type": "layernorm", "normalized_shape": e, **({} if bias else {"bias": False})}
    layers = [{"type": "embedding", "name": "transformer.wte", "num_embeddings": c["vocab_size"], "embedding_dim": e,
               "role": "embedding"},
              {"type": "embedding", "name": "transformer.wpe", "num_embeddings": c["block_size"], "embedding_dim": e,
               "role": "position_embedding"}]
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        layers += [{**norm, "name": p + "ln_1"},
                   {"type": "dense", "name": p + "attn.c_attn", "in_features": e, "out_features": 3 * e, "role": "attn_qkv"},
                   {"type": "dense", "name": p + "attn.c_proj", "in_features": e, "out_features": e, "role": "attn_out"},
                   {**norm, "name": p + "ln_2"},
                   {"type": "dense", "name": p + "mlp.c_fc", "in_features": e, "out_features": 4 * e, "role": "mlp_in",
                    "activation": "gelu"},
                   {"type": "dense", "name": p + "mlp.c_proj", "in_features": 4 * e, "out_features": e, "role": "mlp_out"}]
    layers.append({**norm, "name": "transformer.ln_f"})
    return {"architecture": {"layers": layers}, "scheme": {"name": "nanogpt", **scheme}, "rng": "torch", "seed": seed,
            **({} if bias else {"bias": False})}


SMALL = {"vocab_size": 64, "block_size": 16, "n_layer": 3, "n_embd": 16, "bias": True}
CONFIGS = {"small": SMALL, "no_bias": {**SMALL, "bias": False, "n_layer": 2},
           # 7 values per embedding row: normal_ of < 16 values takes torch's scalar path
           "odd_sizes": {"vocab_size": 5, "block_size": 3, "n_layer": 1, "n_embd": 3, "bias": True}}
SEEDS = [0, 1234, 2 ** 32 + 17]


def nanogpt_state(c: dict, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    model = GPT(c)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    assert np.array_equal(state.pop("lm_head.weight"), state["transformer.wte.weight"])  # tied
    return state


def ours(doc: dict) -> dict[str, np.ndarray]:
    plan = plan_of(doc)
    return {t.name: t.generate() for t in plan.selected}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("config", CONFIGS)
def test_bit_exact_against_nanogpt(config, seed):
    c = CONFIGS[config]
    theirs, mine = nanogpt_state(c, seed), ours(document(c, seed))
    assert list(mine) == list(theirs)
    for name, v in theirs.items():
        assert mine[name].dtype == np.float32 and np.array_equal(mine[name], v), name


def test_every_draw_counts():
    """The replay's order has teeth: without the _init_weights draws the re-drawn c_proj differ (and the
    default order, construct then draw each tensor once, is not nanoGPT's)."""
    c = SMALL
    theirs = nanogpt_state(c, 0)
    gpt2_order = ours({**document(c, 0), "scheme": "gpt2"})  # the same law in the default order
    differing = [n for n in theirs if not np.array_equal(gpt2_order[n], theirs[n])]
    assert "transformer.wte.weight" in differing and "transformer.h.0.attn.c_proj.weight" in differing


def test_selecting_a_subset_gives_the_same_values():
    doc = document(SMALL, 7)
    whole = ours(doc)
    for pick in (["transformer.wpe.weight"], ["transformer.h.1.mlp.c_proj.weight"], ["transformer.wte.weight"]):
        part = ours({**doc, "tensors": pick})
        assert list(part) == pick and np.array_equal(part[pick[0]], whole[pick[0]])


def test_the_law_and_the_reasons():
    """N(0, 0.02^2), c_proj at 0.02/sqrt(2 n_layer) with n_layer the attn_out count, biases 0, norms 1/0,
    chosen_by nanogpt with the numbers in the reason; with rng weightinit too."""
    n = SMALL["n_layer"]
    for rng in ("torch", "weightinit"):
        report = {t["name"]: t for t in report_of(plan_of({**document(SMALL, 0), "rng": rng}))["tensors"]}
        for name, t in report.items():
            s = t["scheme"]
            if t["role"] == "bias":
                assert (s["name"], s["chosen_by"], s["reason"]) == ("zeros", "nanogpt", "nanogpt: biases start at 0")
            elif t["role"].startswith("norm"):
                assert s["chosen_by"] == "default"
            elif name.endswith("c_proj.weight"):
                assert t["residual"] is True
                assert s["std"] == pytest.approx(0.02 / math.sqrt(2 * n), rel=1e-15)
                assert s["chosen_by"] == "nanogpt" and f"sqrt({2 * n})" in s["reason"] and f"n_layer {n} (the model's)" in s["reason"]
            else:
                assert (s["name"], s["std"], s["chosen_by"]) == ("normal", 0.02, "nanogpt"), name


def test_n_layer_and_std_override():
    doc = document(SMALL, 0, std=0.05, n_layer=12)
    t = next(t for t in report_of(plan_of(doc))["tensors"] if t["name"] == "transformer.h.0.mlp.c_proj.weight")
    assert t["scheme"]["std"] == pytest.approx(0.05 / math.sqrt(24), rel=1e-15)
    assert "n_layer 12 (the scheme's)" in t["scheme"]["reason"]


@pytest.mark.parametrize("change, message", [
    (lambda layers: layers[0].pop("role"), "the document has 0 layers with that role"),
    (lambda layers: layers.append({"type": "dense", "name": "lm_head", "in_features": 16, "out_features": 64,
                                   "bias": False, "role": "readout"}), "layer 'lm_head' has role readout"),
])
def test_the_tie_needs_one_embedding_and_no_readout(change, message):
    doc = document(SMALL, 0)
    change(doc["architecture"]["layers"])
    field, msg, _ = problem_of(doc)
    assert field == "scheme.tie_embeddings" and message in msg
    r = create_app().test_client().post("/v1/weights", json=doc)  # over HTTP: a 422 naming the field
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["scheme.tie_embeddings"]
    plan_of({**doc, "scheme": {"name": "nanogpt", "tie_embeddings": False}})  # untied: fine


def test_untied_readout_is_drawn_in_module_order():
    """tie_embeddings false: an lm_head of the document's is drawn where nanoGPT's module order has it."""
    c = SMALL
    doc = document(c, 3, tie_embeddings=False)
    doc["architecture"]["layers"].append({"type": "dense", "name": "lm_head", "in_features": 16, "out_features": 64,
                                          "bias": False, "role": "readout"})
    torch.manual_seed(3)
    model = GPT.__new__(GPT)
    nn.Module.__init__(model)
    model.transformer = nn.ModuleDict(dict(
        wte=nn.Embedding(c["vocab_size"], c["n_embd"]), wpe=nn.Embedding(c["block_size"], c["n_embd"]),
        drop=nn.Dropout(0.0), h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
        ln_f=LayerNorm(c["n_embd"], bias=True)))
    model.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)  # not tied
    model.apply(model._init_weights)
    for pn, p in model.named_parameters():
        if pn.endswith("c_proj.weight"):
            torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c["n_layer"]))
    theirs = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    mine = ours(doc)
    assert list(mine) == list(theirs) and all(np.array_equal(mine[k], theirs[k]) for k in theirs)


def test_max_torch_elements_counts_nanogpts_draws():
    """Selecting wte alone still replays the whole model (its values are lm_head's draw, after every
    block): the bound counts every step up to that draw (constructions, the tied lm_head, the
    _init_weights pass, the lm_head draw), not the tensors up to wte."""
    doc = {**document(SMALL, 0), "tensors": ["transformer.wte.weight"]}
    total = sum(t.size for t in plan_of(doc).tensors)
    wte = SMALL["vocab_size"] * SMALL["n_embd"]
    r = create_app({"max_torch_elements": 2 * total}).test_client().post("/v1/weights", json=doc)
    p = r.get_json()
    assert r.status_code == 413 and (p["limit"], p["requested"]) == ("max_torch_elements", 2 * total + 2 * wte)
    assert "nanogpt's draws up to the last that sets a selected tensor" in p["detail"]
