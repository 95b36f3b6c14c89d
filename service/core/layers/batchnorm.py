"""``batchnorm``: PyTorch's ``nn.BatchNorm1d/2d/3d`` (Keras ``BatchNormalization``).

Tensors: ``weight`` (gamma) and ``bias`` (beta), each (num_features), 1 and 0 (no draws). The running
statistics are buffers, not parameters: not produced.
"""

from __future__ import annotations

from ..fields import dim
from ..torch import modules
from .base import NormLayerType


class BatchNorm(NormLayerType):
    name = "batchnorm"
    example = {"num_features": 16}
    fields = (dim("num_features"),)
    component = "BatchNormLayer"
    summary = "Batch normalization (PyTorch nn.BatchNorm*d): weight and bias (num_features), 1 and 0."

    def tensors(self, layer, layout, with_bias):
        return self.norm_tensors(layer, layout, with_bias, (layer.params["num_features"],))

    def torch_construct(self, gen, layer, with_bias):
        return modules.batchnorm(gen, layer.params["num_features"])
