"""``skipinit``: SkipInit (De & Smith 2020, Batch Normalization Biases Residual Blocks Towards the Identity
Function in Deep Networks).

    alpha = 0            every residual branch's scalar gain (role residual_gain): x + alpha f(x)
    W ~ base scheme      every other weight (default he_normal)
    b = 0

Why: batch normalization trains deep residual networks because it down-scales each branch by about
1/sqrt(depth) at initialization, biasing every block towards the identity; a learnable scalar at the end
of each branch, initialized at 0, does the same without normalization, so the network starts as the
identity whatever its depth (SkipInit, section 3).
"""

from __future__ import annotations

from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use

PAPER = ("De & Smith 2020, Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep "
         "Networks (NeurIPS, section 3)")
BASES = ("he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "lecun_normal", "orthogonal")


def choose(t, layer, spec: dict, model: Model):
    if t.role == "bias":
        return use("zeros"), "skipinit: biases start at 0"
    if t.layer_role == "residual_gain":
        return use("zeros"), "skipinit: a residual branch's scalar gain starts at 0: every block starts as the identity"
    gains = "" if "residual_gain" in model.layer_roles else " (no layer has role residual_gain: nothing starts at 0)"
    return use(spec["base"]), f"skipinit: {t.layer_role or 'a weight'}, the base scheme {spec['base']}{gains}"


RECIPE = Recipe(
    Scheme("skipinit", "SkipInit: the scalar gain at the end of each residual branch (role residual_gain) at 0, "
           "every other weight by the base scheme (he_normal), biases 0",
           "alpha = 0 (x + alpha f(x)); W ~ base scheme",
           r"\alpha = 0\ (x + \alpha f(x));\ W \sim \text{base}",
           (Param("base", "string", "he_normal", choices=BASES, doc="the scheme of every other weight"),),
           None, family="recipe", paper=PAPER),
    choose,
    reference="the paper's rule (tests/core/recipes/test_skipinit.py)",
)
