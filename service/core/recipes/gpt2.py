"""``gpt2``: GPT-2's initialization (Radford et al. 2019; OpenAI's gpt-2 model.py, nanoGPT, transformers).

    W ~ N(0, std^2)                         every weight: embeddings, q/k/v, MLP in, readout
    W ~ N(0, (std / sqrt(2 n_layer))^2)     the output projection of each residual branch
                                            (attn_out, mlp_out, residual_out)
    b = 0

Why the depth factor: a pre-LN block adds its two branches' outputs to the residual stream, so after
n_layer blocks the stream's variance is the sum of 2 n_layer contributions; scaling each branch's
last projection by 1/sqrt(2 n_layer) keeps that sum at the scale of one branch, whatever the depth
("A modified initialization which accounts for the accumulation on the residual path with model
depth", GPT-2 paper, section 2.3). ``n_layer`` is the model's: an hf_config's, else the number of
``attn_out`` layers; a ``layers`` document marks its branches with ``role``. Checked against
transformers' GPT2PreTrainedModel._init_weights (the same rule as hf_default on a gpt2 config).
"""

from __future__ import annotations

import math

from ..roles import is_residual
from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use

PAPER = "Radford et al. 2019, Language Models are Unsupervised Multitask Learners (section 2.3)"


def depth(given: int | None, param: str, model: Model) -> tuple[int | None, str]:
    """2 n_layer, the residual branches the stream sums, and where it comes from (``given``: the scheme's
    parameter ``param``, n_layer here, num_layers for megatron)."""
    if given:
        return 2 * given, f"{param} {given} (the scheme's)"
    if model.blocks:
        return 2 * model.blocks, f"{param} {model.blocks} (the model's)"
    if model.residual_branches:
        return model.residual_branches, f"{model.residual_branches} residual branches (layers with a residual role)"
    return None, ""


def rule(name: str):
    """GPT-2's rule, its reasons naming the recipe that applies it (gpt2; nanogpt draws the same rule in
    nanoGPT's order)."""
    def choose(t, layer, spec: dict, model: Model) -> tuple[dict, str]:
        std = spec["std"]
        if t.role == "bias":
            return use("zeros"), f"{name}: biases start at 0"
        n, source = depth(spec.get("n_layer"), "n_layer", model)
        if is_residual(t.layer_role) and n:
            scaled = std / math.sqrt(n)
            return (use("normal", std=scaled),
                    f"{name}: a residual branch's output projection, N(0, (std / sqrt(2 n_layer))^2) = "
                    f"N(0, ({std:g} / sqrt({n}))^2), std {scaled:.6g}, with {source}: the stream sums 2 n_layer "
                    "branches")
        what = "no layer has a residual role, so nothing is depth-scaled; " if not n else ""
        return use("normal", std=std), f"{name}: {what}N(0, std^2), std {std:g}"
    return choose


#: std and n_layer: gpt2's parameters, nanogpt's too.
PARAMS = (Param("std", "number", 0.02, minimum=0.0, maximum=1e3, exclusive_minimum=True, doc="std of every weight"),
          Param("n_layer", "integer", None, minimum=1, maximum=1 << 20,
                doc="blocks (default: the hf_config's, else the number of attn_out layers)"))


RECIPE = Recipe(
    Scheme("gpt2", "GPT-2: every weight N(0, std^2) (std 0.02); the output projection of each residual branch "
           "(role attn_out, mlp_out, residual_out) N(0, (std / sqrt(2 n_layer))^2); biases 0; norms 1 and 0",
           "N(0, 0.02^2); residual outputs N(0, (0.02/sqrt(2 n_layer))^2)",
           r"\mathcal{N}(0, 0.02^2);\ \text{residual outputs } \mathcal{N}(0, (0.02/\sqrt{2 n_{layer}})^2)",
           PARAMS, None, family="recipe", paper=PAPER),
    rule("gpt2"),
    reference="transformers 5.23.0 GPT2PreTrainedModel._init_weights (tests/core/recipes/test_gpt2.py)",
)
