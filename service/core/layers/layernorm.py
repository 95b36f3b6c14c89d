"""``layernorm``: PyTorch's ``nn.LayerNorm`` (Keras ``LayerNormalization``).

Tensors: ``weight`` and ``bias`` of shape ``normalized_shape`` (an integer or a list), 1 and 0
(no draws); ``bias: false`` drops the shift, as ``nn.LayerNorm(..., bias=False)`` does.
"""

from __future__ import annotations

from ..fields import Field, IntOrList
from ..torch import modules
from .base import NormLayerType


class LayerNorm(NormLayerType):
    name = "layernorm"
    example = {"normalized_shape": [16]}
    fields = (Field("normalized_shape", IntOrList(), required=True),)
    forward = "norm"
    component = "LayerNormLayer"
    summary = "Layer normalization (PyTorch nn.LayerNorm): weight and bias of normalized_shape, 1 and 0."

    @staticmethod
    def shape(layer) -> tuple:
        s = layer.params["normalized_shape"]
        return (s,) if isinstance(s, int) else tuple(s)

    def tensors(self, layer, layout, with_bias):
        return self.norm_tensors(layer, layout, with_bias, self.shape(layer))

    def torch_construct(self, gen, layer, with_bias):
        return modules.layernorm(gen, self.shape(layer), bias=with_bias)
