"""``hf_conv1d``: transformers' ``Conv1D`` (GPT-2's attention and MLP projections): a Linear layer whose
weight is stored transposed, (in_features, out_features).

Tensors: ``weight`` stored (in_features, out_features) in both layouts (Keras's Dense kernel is
stored so too), ``bias`` (out_features). Fans are a Linear's, fan_in = in_features: the engine
computes them on the (out, in) view, where PyTorch's rule applied to the stored (in, out) parameter
would swap them. transformers' constructor draws ``normal_(std=0.02)`` on the stored weight and
zeroes the bias; under ``rng: torch`` an init call is applied to that (out, in) view (``w.T``).
"""

from __future__ import annotations

import numpy as np

from .. import schemes
from ..fields import dim
from .base import TRANSFORMERS, LayerType


class HFConv1D(LayerType):
    name = "hf_conv1d"
    example = {"in_features": 16, "out_features": 48}
    fields = (dim("in_features"), dim("out_features"))
    biased = True
    component = "HFConv1DLayer"
    summary = ("transformers' Conv1D (GPT-2): a Linear whose weight is stored (in_features, out_features); "
               "bias (out_features).")

    def tensors(self, layer, layout, with_bias):
        i, o = layer.params["in_features"], layer.params["out_features"]
        w = self.tensor(layer, "weight", "weight", (o, i), "keras")  # stored (in, out) in both layouts
        out = [w]
        if with_bias:
            out.append(self.tensor(layer, "bias", "bias", (o,), layout, fans=(w.fan_in, w.fan_out)))
        return out

    def torch_default(self, t):
        if t.role == "bias":
            return schemes.spec("zeros"), "transformers Conv1D: bias = 0"
        return schemes.spec("normal", std=0.02), "transformers Conv1D: weight N(0, 0.02^2)"

    def transformers_default(self, t, std, why=None):
        """PreTrainedModel._init_weights has no rule for Conv1D (an nn.Module, no nn.Linear): it keeps its
        constructor's N(0, 0.02^2), whatever initializer_range says. GPT-2's own _init_weights draws
        N(0, initializer_range^2) (the gpt2 family gives ``why``)."""
        if why is not None:
            return super().transformers_default(t, std, why)
        spec, reason = self.torch_default(t)
        return spec, (f"{reason} (transformers {TRANSFORMERS} PreTrainedModel._init_weights leaves Conv1D as "
                      "constructed; GPT-2's own _init_weights draws N(0, initializer_range^2))")

    def torch_construct(self, gen, layer, with_bias):
        i, o = layer.params["in_features"], layer.params["out_features"]
        w, exact = gen.normal_((i, o), 0.0, 0.02)  # Conv1D.__init__: torch.empty(nx, nf), then normal_(std=0.02)
        params = [("weight", w.T, exact)]          # as the (out, in) view the engine describes
        if with_bias:
            params.append(("bias", np.zeros(o, np.float32), True))
        return params
