"""``tensor``: a raw tensor of any shape (a positional embedding, a learned scale, ...), no module.

``shape`` is given in the request's layout; its PyTorch view undoes the Keras permutation, and its
fans follow PyTorch's rule on that view unless ``fan_in`` / ``fan_out`` say otherwise. With
``rng: torch`` it is ``nn.Parameter(torch.empty(shape))``: no draws until the scheme is applied.
"""

from __future__ import annotations

import numpy as np

from .. import schemes
from ..fans import keras_perm, torch_fans
from ..fields import DimList, Field, dim
from .base import TRANSFORMERS, LayerType


class Tensor(LayerType):
    name = "tensor"
    example = {"shape": [1, 10, 16], "fan_in": 16, "fan_out": 16}
    fields = (Field("shape", DimList(), required=True), dim("fan_in", required=False), dim("fan_out", required=False))
    component = "TensorLayer"
    summary = ("A raw tensor of any shape (no bias); its fans follow PyTorch's rule on its PyTorch view unless "
               "fan_in / fan_out are given.")

    def tensors(self, layer, layout, with_bias):
        shape = tuple(layer.params["shape"])
        if layout == "keras" and len(shape) >= 2:
            perm = keras_perm(len(shape))
            torch_shape = tuple(shape[perm.index(i)] for i in range(len(shape)))
        else:
            torch_shape = shape
        fi, fo = torch_fans(torch_shape)
        fi = layer.params.get("fan_in") or fi
        fo = layer.params.get("fan_out") or fo
        return [self.tensor(layer, "", "raw", torch_shape, layout, fans=(fi, fo))]

    def transformers_default(self, t, std, why=None):
        return schemes.spec("normal", std=std), why or (
            f"transformers {TRANSFORMERS} PreTrainedModel._init_weights has no rule for a bare parameter (the model "
            f"that adds one initializes it in its own _init_weights): N(0, initializer_range^2) as for Linear and "
            f"Embedding weights, initializer_range {std:g}")

    def torch_values(self, layer, params, tensors):
        return {t.name: (np.zeros(t.spec.torch_shape, np.float32), True) for t in tensors}  # torch.empty: overwritten
