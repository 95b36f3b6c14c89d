"""``rmsnorm``: root-mean-square normalization, PyTorch's ``nn.RMSNorm`` (Zhang & Sennrich 2019).

Tensor: ``weight`` of shape ``normalized_shape`` (an integer or a list), 1 (no draws). There is no
shift: ``x / sqrt(mean(x^2) + eps) * weight``, so a layer-level ``bias`` is an error. (Some models
store the scale as ``1 + w`` and start ``w`` at 0; for those, give this layer ``scheme: zeros``.)
"""

from __future__ import annotations

from ..fields import Field, IntOrList
from ..torch import modules
from .base import NormLayerType
from .layernorm import LayerNorm


class RMSNorm(NormLayerType):
    name = "rmsnorm"
    example = {"normalized_shape": 16}
    norm_shift = False
    fields = (Field("normalized_shape", IntOrList(), required=True),)
    component = "RMSNormLayer"
    summary = "RMS normalization (PyTorch nn.RMSNorm): weight of normalized_shape, 1; no bias."

    def tensors(self, layer, layout, with_bias):
        return self.norm_tensors(layer, layout, False, LayerNorm.shape(layer))

    def torch_construct(self, gen, layer, with_bias):
        return modules.rmsnorm(gen, LayerNorm.shape(layer))
