"""``fixup``: Fixup (Zhang, Dauphin & Ma 2019, Fixup Initialization: Residual Learning Without Normalization).

    W = 0                                   the last layer of each residual branch (roles attn_out, mlp_out,
                                            residual_out) and the classification layer (readout)
    W ~ He(fan) * L^(-1/(2m-2))             the other layers inside a branch (hidden, mlp_in, attn_qkv, attn_v):
                                            N(0, (L^(-1/(2m-2)))^2 2 / fan)
    W ~ He(fan)                             the layers outside the branches (input, embeddings, pooler, ...)
    scalar multiplier = 1, biases = 0       Fixup's residual_gain tensors start at 1 (its scalar biases at 0)

L: the residual branches (default: the layers with a residual role), m: the layers in each branch.

Why: with the branch's last layer at 0 every block starts as the identity, so the output and its
gradient cannot blow up with depth; the scale L^(-1/(2m-2)) makes the first SGD step change the output by
Theta(eta) whatever the depth, since each of the L branches, a product of m layers, contributes
~ L^(-1) to the update once its m-1 inner layers are scaled so (Fixup section 3, rules 1-3). The
authors' ResNet code (hongyi-zhang/Fixup, fixup_resnet_cifar.py) draws He with fan_out =
out_channels x kernel area: ``mode: "fan_out"``.
"""

from __future__ import annotations

from ..errors import SpecError
from ..roles import is_residual
from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use
from .stacks import param_field, require_role

PAPER = "Zhang, Dauphin & Ma 2019, Fixup Initialization: Residual Learning Without Normalization (section 3)"

#: The layers inside a residual branch other than its last (attention layers: kinds q, k, v).
INNER = ("hidden", "mlp_in", "attn_qkv", "attn_v")
ROLE_HELP = "input, hidden, attn_qkv, attn_v, attn_out, mlp_in, mlp_out, residual_out, residual_gain, readout, ..."


def depth(layer, spec: dict, model: Model) -> tuple[int, str]:
    if spec["L"] is not None:
        return spec["L"], "the scheme's"
    if model.residual_branches:
        return model.residual_branches, "the layers with a residual role"
    raise SpecError(param_field(layer, spec, "L"),
                    "give L, or mark the last layer of each residual branch (role attn_out, mlp_out or residual_out)")


def choose(t, layer, spec: dict, model: Model):
    role = require_role(t, layer, spec, ROLE_HELP)
    if t.role == "bias":
        return use("zeros"), "fixup: biases start at 0"
    if role == "residual_gain":
        return use("ones"), "fixup: a branch's scalar multiplier starts at 1 (the branch is zero through its last layer)"
    last = t.kind == "out" if t.layer_type == "attention" else is_residual(role)
    if last:
        return use("zeros"), "fixup: the last layer of a residual branch starts at 0: every block starts as the identity"
    if role == "readout":
        return use("zeros"), "fixup: the classification layer starts at 0"
    mode = spec["mode"]
    if role in INNER or t.layer_type == "attention":
        big_l, source = depth(layer, spec, model)
        m = spec["m"]
        c = big_l ** (-1.0 / (2 * m - 2))
        return (use("he_normal", gain=c, mode=mode),
                f"fixup: inside a residual branch, He ({mode}) x L^(-1/(2m-2)) = {big_l}^(-1/{2 * m - 2}) = {c:.6g} "
                f"(L = {big_l} residual branches, {source}; m = {m} layers per branch)")
    return use("he_normal", mode=mode), f"fixup: {role}, outside the residual branches: He ({mode}), unscaled"


RECIPE = Recipe(
    Scheme("fixup", "Fixup: the last layer of each residual branch (attn_out, mlp_out, residual_out) and the readout "
           "at 0; the branch's other layers He x L^(-1/(2m-2)); other layers He; residual gains 1, biases 0",
           "W_last = 0; W_branch ~ N(0, 2 L^(-2/(2m-2)) / fan); W_readout = 0",
           r"W_{last} = 0;\ W_{branch} \sim \mathcal{N}\left(0, \tfrac{2}{n} L^{-\frac{2}{2m-2}}\right);\ W_{out} = 0",
           (Param("L", "integer", None, minimum=1, maximum=1 << 20,
                  doc="residual branches (default: the layers with a residual role)"),
            Param("m", "integer", 2, minimum=2, maximum=1024, doc="layers in each residual branch"),
            Param("mode", "string", "fan_in", choices=("fan_in", "fan_out"),
                  doc="He's fan (the authors' ResNet code: fan_out)")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="the authors' fixup_resnet_cifar.py init, written in tests/core/recipes/test_fixup.py",
)
