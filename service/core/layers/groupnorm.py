"""``groupnorm``: group normalization, PyTorch's ``nn.GroupNorm`` (Wu & He 2018; Keras ``GroupNormalization``).

Tensors: ``weight`` and ``bias`` of shape (num_channels,), 1 and 0 (no draws); ``num_groups`` must
divide ``num_channels``.
"""

from __future__ import annotations

from ..fields import Rule, dim
from ..torch import modules
from .base import NormLayerType


def _groups_divide(values: dict):
    if "num_groups" in values and "num_channels" in values and values["num_channels"] % values["num_groups"]:
        return "num_groups", (f"num_groups ({values['num_groups']}) must divide num_channels "
                              f"({values['num_channels']})")
    return None


class GroupNorm(NormLayerType):
    name = "groupnorm"
    example = {"num_groups": 4, "num_channels": 16}
    fields = (dim("num_groups"), dim("num_channels"))
    rules = (Rule(_groups_divide, "num_groups divides num_channels"),)
    component = "GroupNormLayer"
    summary = "Group normalization (PyTorch nn.GroupNorm): weight and bias (num_channels), 1 and 0."

    def tensors(self, layer, layout, with_bias):
        return self.norm_tensors(layer, layout, with_bias, (layer.params["num_channels"],))

    def torch_construct(self, gen, layer, with_bias):
        return modules.groupnorm(gen, layer.params["num_groups"], layer.params["num_channels"])
