"""``hf_default`` on the layer types of ``architecture.layers`` (no hf_config): what transformers'
``PreTrainedModel._init_weights`` does to the torch module of each type, as each tensor's report says
it (the table) and as transformers draws it (a ``PreTrainedModel`` holding those modules, its
``post_init``, each tensor checked as in test_statistics). Then the scheme's ``initializer_range``
against the hf_config's, and another scheme on an hf_config.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.core.layers import TRANSFORMERS

from tests.helpers import plan_of, report_of

from .configs import TINY
from .reference import our_values, torch, transformers
from .test_statistics import MIN_ELEMENTS, disagreement

nn = torch.nn
R = 0.05  # the probe's initializer_range: not the default 0.02, so the table shows where it is read
INIT = f"transformers {TRANSFORMERS} _init_weights"
NORMAL = ({"name": "normal", "std": R}, "hf_default", f"{INIT}: N(0, initializer_range^2), initializer_range {R:g}")
ZERO_BIAS = ({"name": "zeros"}, "hf_default", f"{INIT}: biases 0")
NORM_ONE = ({"name": "ones"}, "default", "normalization scale starts at 1 (identity transform)")
NORM_ZERO = ({"name": "zeros"}, "default", "normalization bias starts at 0 (shift-free)")


def constructed(spec: dict, module: str, reason: str):
    return spec, "hf_default", f"{reason} ({INIT} leaves {module} as constructed)"


def recurrent(name: str):
    b = 1 / math.sqrt(64)
    return constructed({"name": "uniform", "low": -b, "high": b}, name,
                       f"PyTorch {name}: every parameter U[-1/sqrt(hidden_size), +1/sqrt(hidden_size)]")


XAVIER_PACKED = {"name": "uniform", "low": -math.sqrt(6 / (64 + 192)), "high": math.sqrt(6 / (64 + 192))}
MHA = f"({INIT} runs MultiheadAttention._reset_parameters)"
CONV1D = (f"(transformers {TRANSFORMERS} PreTrainedModel._init_weights leaves Conv1D as constructed; GPT-2's own "
          "_init_weights draws N(0, initializer_range^2))")

#: layer -> (the torch module transformers initializes, {tensor: (scheme, chosen_by, reason)}). The
#: tensor names are ours; ``TORCH_NAMES`` maps the ones torch names otherwise.
TABLE = [
    ({"type": "dense", "name": "dense", "in_features": 64, "out_features": 128}, lambda: nn.Linear(64, 128),
     {"weight": NORMAL, "bias": ZERO_BIAS}),
    ({"type": "conv2d", "name": "conv", "in_channels": 16, "out_channels": 32, "kernel_size": 3},
     lambda: nn.Conv2d(16, 32, 3), {"weight": NORMAL, "bias": ZERO_BIAS}),
    ({"type": "conv_transpose1d", "name": "convt1", "in_channels": 64, "out_channels": 32, "kernel_size": 3},
     lambda: nn.ConvTranspose1d(64, 32, 3), {"weight": NORMAL, "bias": ZERO_BIAS}),
    ({"type": "conv_transpose3d", "name": "convt3", "in_channels": 8, "out_channels": 8, "kernel_size": 4},
     lambda: nn.ConvTranspose3d(8, 8, 4),
     {k: constructed({"name": "uniform_fan_in"}, "ConvTranspose3d", "PyTorch Linear/Conv: kaiming_uniform_(a=sqrt(5)) "
                     "= U[+-1/sqrt(fan_in)] for the weight, same bound for the bias") for k in ("weight", "bias")}),
    ({"type": "embedding", "name": "emb", "num_embeddings": 128, "embedding_dim": 64, "padding_idx": 5},
     lambda: nn.Embedding(128, 64, padding_idx=5), {"weight": NORMAL}),
    ({"type": "lstm", "name": "lstm", "input_size": 64, "hidden_size": 64}, lambda: nn.LSTM(64, 64),
     {**{k: ({"name": "xavier_uniform"}, "hf_default", f"{INIT}: LSTM weights xavier_uniform_")
         for k in ("weight_ih", "weight_hh")},
      **{k: ({"name": "zeros"}, "hf_default", f"{INIT}: LSTM biases 0") for k in ("bias_ih", "bias_hh")}}),
    ({"type": "gru", "name": "gru", "input_size": 64, "hidden_size": 64}, lambda: nn.GRU(64, 64),
     {k: recurrent("GRU") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}),
    ({"type": "rnn", "name": "rnn", "input_size": 64, "hidden_size": 64}, lambda: nn.RNN(64, 64),
     {k: recurrent("RNN") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}),
    ({"type": "attention", "name": "attn", "embed_dim": 64, "num_heads": 4}, lambda: nn.MultiheadAttention(64, 4),
     {**{f"{p}_proj.weight": (XAVIER_PACKED, "hf_default", "PyTorch MultiheadAttention: xavier_uniform_ over the "
                                                           f"packed (3E, E) in_proj_weight {MHA}") for p in "qkv"},
      **{f"{p}_proj.bias": ({"name": "zeros"}, "hf_default",
                            f"PyTorch MultiheadAttention: in_proj_bias and out_proj.bias = 0 {MHA}")
         for p in ("q", "k", "v", "out")},
      "out_proj.weight": NORMAL}),
    ({"type": "layernorm", "name": "ln", "normalized_shape": 64}, lambda: nn.LayerNorm(64),
     {"weight": NORM_ONE, "bias": NORM_ZERO}),
    ({"type": "rmsnorm", "name": "rms", "normalized_shape": 64}, lambda: nn.RMSNorm(64), {"weight": NORM_ONE}),
    ({"type": "batchnorm", "name": "bn", "num_features": 64}, lambda: nn.BatchNorm1d(64),
     {"weight": NORM_ONE, "bias": NORM_ZERO}),
    ({"type": "groupnorm", "name": "gn", "num_groups": 4, "num_channels": 64}, lambda: nn.GroupNorm(4, 64),
     {"weight": NORM_ONE, "bias": NORM_ZERO}),
    ({"type": "hf_conv1d", "name": "c1d", "in_features": 64, "out_features": 128},
     lambda: transformers.pytorch_utils.Conv1D(128, 64),
     {"weight": ({"name": "normal", "std": 0.02}, "hf_default", f"transformers Conv1D: weight N(0, 0.02^2) {CONV1D}"),
      "bias": ({"name": "zeros"}, "hf_default", f"transformers Conv1D: bias = 0 {CONV1D}")}),
    ({"type": "tensor", "name": "pos", "shape": [64, 64]}, None,
     {"": ({"name": "normal", "std": R}, "hf_default",
           f"transformers {TRANSFORMERS} PreTrainedModel._init_weights has no rule for a bare parameter (the model "
           f"that adds one initializes it in its own _init_weights): N(0, initializer_range^2) as for Linear and "
           f"Embedding weights, initializer_range {R:g}")}),
]
LAYERS = [layer for layer, _, _ in TABLE]


def torch_name(ours: str) -> tuple[str, slice | None]:
    """The torch parameter holding our tensor (and the rows of it): MultiheadAttention packs q, k, v;
    the recurrent modules suffix ``_l0``."""
    layer, _, rest = ours.partition(".")
    if layer == "attn" and rest[0] in "qkv":
        i = "qkv".index(rest[0])
        return f"attn.in_proj_{rest.rpartition('.')[2]}", slice(64 * i, 64 * (i + 1))
    if layer in ("lstm", "gru", "rnn"):
        return f"{ours}_l0", None
    return ours, None


class ProbeConfig(transformers.PretrainedConfig):
    model_type = "weightinit-probe"

    def __init__(self, initializer_range: float = 0.02, **kw):
        self.initializer_range = initializer_range
        super().__init__(**kw)


class Probe(transformers.PreTrainedModel):
    """A transformers model made of the table's modules: post_init runs the base ``_init_weights``."""

    config_class = ProbeConfig

    def __init__(self, config):
        super().__init__(config)
        self.layers = nn.ModuleDict({layer["name"]: make() for layer, make, _ in TABLE if make is not None})
        self.post_init()


def probe_document(**scheme) -> dict:
    return {"architecture": {"layers": LAYERS}, "scheme": {"name": "hf_default", **scheme}, "seed": 3}


@pytest.mark.parametrize("layer, expected", [(layer, expected) for layer, _, expected in TABLE],
                         ids=[layer["type"] for layer in LAYERS])
def test_each_tensor_says_what_transformers_does(layer, expected):
    report = report_of(plan_of({"architecture": {"layers": [layer]},
                                "scheme": {"name": "hf_default", "initializer_range": R}}))
    got = {}
    for t in report["tensors"]:
        scheme = dict(t["scheme"])
        by, reason = scheme.pop("chosen_by"), scheme.pop("reason")
        got[t["name"].removeprefix(layer["name"]).removeprefix(".")] = (scheme, by, reason)
    assert got.keys() == expected.keys()
    for name, (spec, by, reason) in expected.items():
        assert {k: got[name][0][k] for k in spec} == pytest.approx(spec), name
        assert got[name][1:] == (by, reason), name


def test_transformers_draws_what_the_table_says():
    """The modules in a real PreTrainedModel (initializer_range R): every tensor of ours follows its
    torch twin (KS for drawn ones, exactly for constants, the padding row zero in both)."""
    torch.manual_seed(0)
    model = Probe(ProbeConfig(initializer_range=R))
    with torch.no_grad():
        theirs = {k.removeprefix("layers."): v.detach().to(torch.float64).numpy()
                  for k, v in model.state_dict().items()}
    plan = plan_of(probe_document(initializer_range=R))
    ours = our_values(plan)
    failures = []
    for t in plan.selected:
        if t.spec.layer == "pos":
            continue  # a bare parameter: no module, nothing of transformers' to compare with
        name, rows = torch_name(t.name)
        b = theirs[name][rows] if rows else theirs[name]
        # the recurrent and ConvTranspose3d biases are small (their constructor's U[-b, b]): a weaker
        # test, still a test; every weight has the size of test_statistics'
        assert t.size >= MIN_ELEMENTS or t.spec.role == "bias" or np.ptp(b) == 0, t.name
        failures.append(disagreement(t, ours[t.name], b))
    assert not [f for f in failures if f], "\n".join(f for f in failures if f)


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_the_scheme_s_initializer_range_wins_over_the_config_s(name):
    config = {**TINY[name], "initializer_range": 0.03}
    report = report_of(plan_of({"architecture": {"hf_config": config},
                                "scheme": {"name": "hf_default", "initializer_range": 0.05}}))
    stds = {t["name"]: t["scheme"].get("std") for t in report["tensors"] if t["scheme"]["name"] == "normal"}
    scaled = 0.05 / math.sqrt(2 * config.get("n_layer", 1))
    assert stds and all(s == (scaled if n.endswith("c_proj.weight") else 0.05) for n, s in stds.items())


@pytest.mark.parametrize("config_range, scheme_range, std", [
    (0.03, None, 0.03),   # the config's
    (0.0, None, 0.02),    # transformers' `initializer_range or 0.02`
    (None, None, 0.02),   # absent: LlamaConfig's default
    (0.03, 0.07, 0.07),   # the scheme's
])
def test_which_initializer_range(config_range, scheme_range, std):
    config = dict(TINY["llama"])
    if config_range is not None:
        config["initializer_range"] = config_range
    scheme = {"name": "hf_default", "initializer_range": scheme_range}
    report = report_of(plan_of({"architecture": {"hf_config": config}, "scheme": scheme}))
    assert {t["scheme"].get("std") for t in report["tensors"] if t["role"] == "weight"} == {std}


@pytest.mark.parametrize("name", ["gemma untied biases", "llama gqa biases head_dim pad", "bert mlm untied"])
def test_another_scheme_draws_the_weights_and_keeps_the_rest(name):
    """he_normal on an hf_config: every weight matrix is he_normal; norms keep 1 and 0 (Gemma's 0), biases
    0, and the padding row stays zero."""
    config = TINY[name]
    plan = plan_of({"architecture": {"hf_config": config}, "scheme": "he_normal", "seed": 2})
    report = {t["name"]: t for t in report_of(plan)["tensors"]}
    values = our_values(plan)
    gemma = config["model_type"] == "gemma"
    for t in plan.selected:
        scheme = report[t.name]["scheme"]
        if t.spec.role == "weight":
            assert (scheme["name"], scheme["chosen_by"]) == ("he_normal", "request"), t.name
        elif t.spec.role == "norm_weight":
            assert np.all(values[t.name] == (0 if gemma else 1)), t.name
            assert scheme["chosen_by"] == ("model" if gemma else "default")
        else:  # biases, norms' shifts, BERT's cls.predictions.bias
            assert not values[t.name].any(), t.name
        for r in t.spec.zero_rows:
            assert not values[t.name][r].any() and values[t.name][r - 1].all()
    assert any(t.spec.zero_rows for t in plan.selected)
