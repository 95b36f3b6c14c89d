"""``attention``: multi-head attention, PyTorch's ``nn.MultiheadAttention`` with its projections unpacked.

Tensors: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` weights (E, E) and biases (E). PyTorch packs
the first three into ``in_proj_weight`` (3E, E) rows [0:E], [E:2E], [2E:3E] (likewise
``in_proj_bias``): its constructor draws ``out_proj`` as an ``nn.Linear`` first, then
``xavier_uniform_`` over the packed (3E, E) matrix, and zeroes every bias; ``named_parameters()``
lists the packed q, k, v weights, then their biases, then ``out_proj``.
"""

from __future__ import annotations

import math

from .. import schemes
from ..fields import Rule, dim
from ..torch import modules
from .base import TRANSFORMERS, LayerType

PROJECTIONS = ("q", "k", "v", "out")
#: named_parameters() order of the unpacked tensors: packed q, k, v weights, their biases, out_proj.
INIT_ORDER = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "q_proj.bias", "k_proj.bias", "v_proj.bias",
              "out_proj.weight", "out_proj.bias")


def _heads_divide(values: dict):
    if "embed_dim" in values and "num_heads" in values and values["embed_dim"] % values["num_heads"]:
        return "embed_dim", f"embed_dim ({values['embed_dim']}) must be divisible by num_heads ({values['num_heads']})"
    return None


class Attention(LayerType):
    name = "attention"
    example = {"embed_dim": 16, "num_heads": 4}
    fields = (dim("embed_dim"), dim("num_heads"))
    rules = (Rule(_heads_divide, "num_heads divides embed_dim"),)
    biased = True
    component = "AttentionLayer"
    summary = ("Multi-head attention (PyTorch nn.MultiheadAttention, projections unpacked): q_proj, k_proj, v_proj, "
               "out_proj weights (E, E) and biases (E).")

    def tensors(self, layer, layout, with_bias):
        e = layer.params["embed_dim"]
        out = []
        for proj in PROJECTIONS:
            out.append(self.tensor(layer, f"{proj}_proj.weight", "weight", (e, e), layout, kind=proj))
            if with_bias:
                out.append(self.tensor(layer, f"{proj}_proj.bias", "bias", (e,), layout, fans=(e, e), kind=proj))
        return out

    def torch_default(self, t):
        if t.role == "bias":
            return schemes.spec("zeros"), "PyTorch MultiheadAttention: in_proj_bias and out_proj.bias = 0"
        if t.kind == "out":
            return (schemes.spec("uniform_fan_in"),
                    "PyTorch MultiheadAttention: out_proj is a Linear (U[+-1/sqrt(fan_in)])")
        e = t.torch_shape[1]
        b = math.sqrt(6.0 / (e + 3 * e))
        return (schemes.spec("uniform", low=-b, high=b),
                "PyTorch MultiheadAttention: xavier_uniform_ over the packed (3E, E) in_proj_weight")

    def transformers_default(self, t, std, why=None):
        """transformers runs MultiheadAttention's own _reset_parameters (after its out_proj, a Linear, got
        N(0, std^2)): q, k, v as torch constructs them, every bias 0."""
        if t.role == "weight" and t.kind == "out":
            return super().transformers_default(t, std, why)
        spec, reason = self.torch_default(t)
        return spec, f"{reason} (transformers {TRANSFORMERS} _init_weights runs MultiheadAttention._reset_parameters)"

    def torch_construct(self, gen, layer, with_bias):
        return modules.multihead_attention(gen, layer.params["embed_dim"], layer.params["num_heads"], bias=with_bias)

    def torch_values(self, layer, params, tensors):
        by_name = {name: (arr, exact) for name, arr, exact in params}
        out = {}
        for t in tensors:
            proj, kind = t.spec.suffix.split(".")
            if proj == "out_proj":
                out[t.name] = by_name[f"out_proj.{kind}"]
            else:
                e = t.spec.torch_shape[0]
                i = "qkv".index(proj[0])
                packed, exact = by_name[f"in_proj_{kind}"]
                out[t.name] = (packed[i * e:(i + 1) * e], exact)
        return out

    def torch_init_order(self, tensors):
        return sorted(tensors, key=lambda t: INIT_ORDER.index(t.spec.suffix))
