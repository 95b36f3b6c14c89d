"""``dense``: a fully connected layer, PyTorch's ``nn.Linear`` (Keras ``Dense``).

Tensors: ``weight`` (out_features, in_features), ``bias`` (out_features); Keras stores the kernel
(in_features, out_features). PyTorch's constructor draws ``kaiming_uniform_(a=sqrt(5))`` =
U[+-1/sqrt(fan_in)] for the weight and the same bound for the bias.
"""

from __future__ import annotations

from ..fields import dim
from ..torch import modules
from .base import LayerType


class Dense(LayerType):
    name = "dense"
    example = {"in_features": 16, "out_features": 8, "activation": "relu"}
    fields = (dim("in_features"), dim("out_features"))
    biased = True
    forward = "dense"
    component = "DenseLayer"
    summary = "A fully connected layer (PyTorch nn.Linear, Keras Dense): weight (out, in), bias (out)."

    def tensors(self, layer, layout, with_bias):
        i, o = layer.params["in_features"], layer.params["out_features"]
        w = self.tensor(layer, "weight", "weight", (o, i), layout)
        out = [w]
        if with_bias:
            out.append(self.tensor(layer, "bias", "bias", (o,), layout, fans=(w.fan_in, w.fan_out)))
        return out

    def torch_construct(self, gen, layer, with_bias):
        return modules.linear(gen, layer.params["in_features"], layer.params["out_features"], bias=with_bias)
