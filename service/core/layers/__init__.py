"""The layer types: one file each, listed here once, in the order the API lists them.

``REGISTRY`` maps a type name to its ``LayerType`` (``base.py`` says what a type owns). Every other
part of the service reads it: the boundary's validation and the OpenAPI document (fields, rules),
the plan (tensors, fans), the policies (framework defaults), the PyTorch replay (module
construction, draw order) and the diagnostics (forward). An unknown type is an error everywhere
(``get``). Adding a type: docs/architecture.md.
"""

from __future__ import annotations

from ..errors import SpecError
from . import attention, batchnorm, conv, dense, embedding, groupnorm, hf_conv1d, layernorm, recurrent, rmsnorm, tensor
from .base import TRANSFORMERS, Layer, LayerType, NormLayerType, TensorSpec

_TYPES: tuple[LayerType, ...] = (
    dense.Dense(),
    *conv.TYPES,
    embedding.Embedding(),
    *recurrent.TYPES,
    batchnorm.BatchNorm(),
    layernorm.LayerNorm(),
    attention.Attention(),
    tensor.Tensor(),
    rmsnorm.RMSNorm(),
    groupnorm.GroupNorm(),
    hf_conv1d.HFConv1D(),
)
REGISTRY: dict[str, LayerType] = {t.name: t for t in _TYPES}
NAMES: tuple[str, ...] = tuple(REGISTRY)
#: Fields every layer has, besides its type's own.
COMMON_FIELDS = ("type", "name", "activation", "scheme", "bias", "role")


def get(name: str) -> LayerType:
    """The layer type called ``name``; a SpecError naming the accepted types otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise SpecError("type", f"unknown layer type {name!r}; expected one of {', '.join(NAMES)}") from None


__all__ = ["REGISTRY", "NAMES", "COMMON_FIELDS", "get", "Layer", "LayerType", "NormLayerType", "TensorSpec"]
