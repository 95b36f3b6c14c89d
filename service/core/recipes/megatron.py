"""``megatron``: Megatron-LM's default initialization (Shoeybi et al. 2019; megatron-core's
``TransformerConfig``: ``init_method``, ``output_layer_init_method``).

    W ~ N(0, init_method_std^2)                           init_method_normal(init_method_std): every
                                                          weight, embeddings and the LM head included
    W ~ N(0, (init_method_std / sqrt(2 num_layers))^2)    scaled_init_method_normal(init_method_std,
                                                          num_layers): the output layer of each
                                                          attention and MLP block (roles attn_out, mlp_out)
    b = 0;  norms 1 and 0

Why: GPT-2's argument (``gpt2``): each of a block's two residual branches adds its output to the
stream, so after num_layers blocks it sums 2 num_layers contributions; scaling the branches' output
layers by 1/sqrt(2 num_layers) keeps the sum at one branch's scale. Megatron states it as two init
methods, and a model that gave its output layers ``init_method`` instead (the bug the issue recalls)
loses the depth factor. ``num_layers`` is the model's (an hf_config's, else the number of attn_out
layers) unless given. Checked against megatron-core 0.16.1's ``init_method_normal`` and
``scaled_init_method_normal`` (multiplier 2.0, the default outside hybrid models) under ``rng: "torch"``,
bit for bit (tests/core/recipes/test_megatron.py).
"""

from __future__ import annotations

import math

from ..roles import is_residual
from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use
from .gpt2 import depth

PAPER = ("Shoeybi et al. 2019, Megatron-LM: Training Multi-Billion Parameter Language Models Using Model "
         "Parallelism (section 3)")


def choose(t, layer, spec: dict, model: Model) -> tuple[dict, str]:
    std = spec["init_method_std"]
    if t.role == "bias":
        return use("zeros"), "megatron: biases start at 0 (Megatron zeroes every bias)"
    n, source = depth(spec.get("num_layers"), "num_layers", model)
    if is_residual(t.layer_role) and n:
        scaled = std / math.sqrt(n)
        return (use("normal", std=scaled),
                f"megatron: an output layer (role {t.layer_role}), output_layer_init_method = "
                f"scaled_init_method_normal(init_method_std, num_layers): N(0, (init_method_std / sqrt(2 num_layers))^2)"
                f" = N(0, ({std:g} / sqrt({n}))^2), std {scaled:.6g}, with {source}")
    what = "no layer has a residual role, so nothing is depth-scaled; " if not n else ""
    return (use("normal", std=std),
            f"megatron: {what}init_method = init_method_normal(init_method_std): N(0, init_method_std^2), std {std:g}")


RECIPE = Recipe(
    Scheme("megatron", "Megatron-LM (megatron-core): every weight N(0, init_method_std^2) (init_method_normal, std "
           "0.02); the output layers of the attention and MLP blocks (role attn_out, mlp_out, residual_out) "
           "N(0, (init_method_std / sqrt(2 num_layers))^2) (scaled_init_method_normal); biases 0; norms 1 and 0",
           "N(0, init_method_std^2); output layers N(0, (init_method_std/sqrt(2 num_layers))^2)",
           r"\mathcal{N}(0, \sigma^2);\ \text{output layers } \mathcal{N}(0, (\sigma/\sqrt{2 L})^2)",
           (Param("init_method_std", "number", 0.02, minimum=0.0, maximum=1e3, exclusive_minimum=True,
                  doc="std of init_method_normal, every weight"),
            Param("num_layers", "integer", None, minimum=1, maximum=1 << 20,
                  doc="transformer layers (default: the hf_config's, else the number of attn_out layers)")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="megatron-core 0.16.1 init_method_normal, scaled_init_method_normal (tests/core/recipes/test_megatron.py)",
)
