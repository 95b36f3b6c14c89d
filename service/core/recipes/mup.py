"""``mup``: the maximal-update parametrization's initialization (Yang et al. 2021, Tensor Programs V), as
the ``mup`` package 1.0.0 computes it after ``set_base_shapes`` (``mup.init``, ``mup.layer.MuReadout``).

    width_mult = width / base_width
    std_base   = the base scheme's std at the *base* shape (each dimension that grows with width divided
                 by width_mult): normal std; xavier gain sqrt(2 / (fan_in_b + fan_out_b));
                 kaiming sqrt(2 / (1 + a^2)) / sqrt(fan_b)
    W ~ std_base * width_mult^(-1/2)   matrix-like: both dimensions grow (hidden, attn_qkv, attn_v,
                                       attn_out, mlp_in, mlp_out, residual_out, pooler)
    W ~ std_base                       vector-like: one dimension grows (input, patch_embedding,
                                       embeddings, readout); cls_token: none (residual_gain: 1)
    readout: MuReadout multiplies its input by output_mult / width_mult in the forward pass (not a
             weight); readout_zero_init: true starts it at 0
    b = 0

Why: at width_mult 1 the model is the base model exactly (its std parametrization); as the width grows,
a hidden matrix sums width_mult times more inputs, so its entries shrink by width_mult^(-1/2) to keep
the pre-activations O(1), while input weights and embeddings (a finite fan-in) keep their std and the
readout's 1/width_mult keeps the logits from growing as its inputs correlate with its weights during
training (Tensor Programs V, Table 3). Every dimension that grows is taken to grow by the same
width_mult (mup computes one per dimension from the base and delta shapes). Checked tensor by tensor
against set_base_shapes + mup.init on an MLP and a small transformer at two widths.
"""

from __future__ import annotations

import math

from ..errors import SpecError
from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use
from .stacks import param_field, require_role

PAPER = ("Yang et al. 2021, Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter "
         "Transfer (Table 3); the mup package 1.0.0")

#: role -> (does the output (fan_out) dimension grow with width, does the input (fan_in) dimension grow)
INFINITE: dict[str, tuple[bool, bool]] = {
    **{r: (True, True) for r in ("hidden", "attn_qkv", "attn_v", "attn_out", "mlp_in", "mlp_out", "residual_out",
                                 "pooler")},
    **{r: (True, False) for r in ("input", "patch_embedding")},
    # an embedding table (vocab, d): torch's fan_in is d, its second dimension (mup.init reads it so too)
    **{r: (False, True) for r in ("embedding", "position_embedding", "token_type_embedding", "readout")},
    **{r: (False, False) for r in ("cls_token", "residual_gain")},  # residual_gain: 1
}
INITS = ("normal", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform")


def fans(torch_shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) as torch.nn.init._calculate_fan_in_and_fan_out computes them (mup.init calls it)."""
    receptive = math.prod(torch_shape[2:])
    return torch_shape[1] * receptive, torch_shape[0] * receptive


def base_std(spec: dict, fan_in: float, fan_out: float) -> tuple[float, str]:
    """The base scheme's std at the base fans, and its formula."""
    init = spec["init"]
    if init == "normal":
        return spec["std"], f"std {spec['std']:g}"
    if init.startswith("xavier"):
        g = spec["gain"]
        return (g * math.sqrt(2.0 / (fan_in + fan_out)),
                f"gain sqrt(2 / (fan_in_b + fan_out_b)) = {g:g} sqrt(2 / ({fan_in:g} + {fan_out:g}))")
    a = spec["negative_slope"]
    fan = fan_in if spec["mode"] == "fan_in" else fan_out
    return (math.sqrt(2.0 / (1 + a * a)) / math.sqrt(fan),
            f"sqrt(2 / (1 + a^2)) / sqrt({spec['mode']}_b) = sqrt(2 / (1 + {a:g}^2)) / sqrt({fan:g})")


def width(layer, spec: dict, model: Model) -> tuple[int, str]:
    if spec["width"] is not None:
        return spec["width"], "the scheme's"
    if model.width is not None:
        return model.width, "the model's"
    raise SpecError(param_field(layer, spec, "width"),
                    "give the model's width: a layers document has no hidden size to read it from")


def choose(t, layer, spec: dict, model: Model):
    role = require_role(t, layer, spec, ", ".join(INFINITE))
    if t.role == "bias":
        return use("zeros"), "mup: biases start at 0"
    if role == "residual_gain":
        return use("ones"), "mup: a scalar gain starts at 1 (no dimension grows with width)"
    w, source = width(layer, spec, model)
    mult = w / spec["base_width"]
    grows_out, grows_in = INFINITE[role]
    ninf = grows_out + grows_in
    head = f"mup: {role}, width_mult = width / base_width = {w} / {spec['base_width']} ({source} width) = {mult:.6g}"
    readout = (f"; MuReadout multiplies its input by output_mult / width_mult = 1/{mult:.6g} in the forward pass "
               "(a constant of the model, not a weight)") if role == "readout" else ""
    if role == "readout" and spec["readout_zero_init"]:
        return use("zeros"), f"{head}; readout_zero_init: the readout starts at 0{readout}"
    if spec["init"] != "normal" and (ninf == 0 or (t.role == "raw" and len(t.torch_shape) != 2)):
        # mup reads fans from a tensor's first two dimensions, which a raw tensor's role does not place
        raise SpecError(param_field(layer, spec, "init"),
                        f"a {role} tensor of shape {list(t.shape)} takes init normal (mup.init's xavier and kaiming "
                        "read a matrix's two dimensions)")
    fan_in, fan_out = fans(t.torch_shape) if ninf else (0, 0)
    fan_in_b = fan_in / mult if grows_in else fan_in
    fan_out_b = fan_out / mult if grows_out else fan_out
    std, formula = base_std(spec, fan_in_b, fan_out_b)
    if ninf == 2:
        std /= math.sqrt(mult)
        rule = f"matrix-like (both dimensions grow): {spec['init']} at the base shape, {formula}, x width_mult^(-1/2)"
    else:
        rule = (f"vector-like ({'one dimension grows' if ninf else 'no dimension grows'}): {spec['init']} "
                f"at the base shape, {formula}, unscaled")
    why = f"{head}; {rule}: std {std:.6g}{readout}"
    if spec["init"].endswith("uniform"):
        bound = math.sqrt(3.0) * std
        return use("uniform", low=-bound, high=bound), why
    return use("normal", std=std), why


RECIPE = Recipe(
    Scheme("mup", "muP (maximal update parametrization) from base shapes, as mup 1.0.0's set_base_shapes + mup.init: "
           "width_mult = width / base_width; matrix-like weights (both dimensions grow: hidden, attn_*, mlp_*) get the "
           "base scheme's std at the base shape x width_mult^(-1/2), vector-like ones (input, embeddings, readout) "
           "the base shape's std; the readout's 1/width_mult output multiplier is reported (forward pass); biases 0",
           "std = std_base(base shape) x width_mult^(-1/2) (hidden); std_base (input, embeddings, readout)",
           r"\sigma = \sigma_{base}\,m^{-1/2}\ \text{(hidden)};\ \sigma_{base}\ \text{(input, embeddings, readout)},"
           r"\ m = \mathrm{width}/\mathrm{base\_width}",
           (Param("base_width", "integer", None, minimum=1, maximum=1 << 24, required=True,
                  doc="the width the base shapes were set at (the base model's)"),
            Param("width", "integer", None, minimum=1, maximum=1 << 24,
                  doc="the model's width (default: the hf_config's hidden size)"),
            Param("init", "string", "normal", choices=INITS, doc="the base scheme, as mup.init applies it"),
            Param("std", "number", 0.02, minimum=0.0, maximum=1e3, exclusive_minimum=True, doc="init normal's std"),
            Param("gain", "number", 1.0, minimum=0.0, maximum=1e3, exclusive_minimum=True, doc="the xavier inits' gain"),
            Param("negative_slope", "number", 0.0, minimum=0.0, maximum=1e3, doc="the kaiming inits' a"),
            Param("mode", "string", "fan_in", choices=("fan_in", "fan_out"), doc="the kaiming inits' fan"),
            Param("readout_zero_init", "boolean", False, doc="MuReadout(readout_zero_init=True): the readout starts at 0")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="mup 1.0.0 set_base_shapes + mup.init, MuReadout (tests/core/recipes/test_mup.py)",
)
