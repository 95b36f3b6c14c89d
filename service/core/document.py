"""The request document: its fields, declared once, and the typed ``Request`` the engine receives.

The document is the public contract (README "The request document"; clients in other languages
depend on its field names and error paths)::

    {"architecture": {"layers": [<layer>, ...]},      every layer type's fields: core.layers
                  or {"hf_config": <config.json>},  a Hugging Face model: core.hf
     "scheme": "auto", "seed": 0, "dtype": "float32", "layout": "torch",
     "bias": null, "tensors": null, "rng": "weightinit"}

``FIELDS`` declares the top level (``core.fields``); ``service.document`` validates a document
against these declarations and the layer registry, once, at the boundary, and builds a
``Request``; the OpenAPI document is generated from the same declarations. ``Request.document``
is the normalized document: defaults filled, scheme names canonical, each layer as the request gave
it (its keys in the request's order). It is echoed in every report and hashed into every ETag, so
its bytes are part of the contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import DTYPES
from .fields import Choice, Field, Integer, SchemeRef, TextList
from .hf import HFModel
from .layers import Layer

SEED_MAX = 2 ** 63  # exclusive
LAYOUTS = ("torch", "keras")
RNGS = ("weightinit", "torch")
#: Structural ceilings of the document (the configured limits are lower; these only bound parsing).
MAX_LAYERS_HARD = 10_000
MAX_PATTERNS = 1_024
PATTERN_MAX = 256

#: The top-level fields, in the order the normalized document lists them (``architecture`` first: its
#: structure, a list of layers each validated by its type, is the boundary's to walk).
FIELDS: tuple[Field, ...] = (
    Field("scheme", SchemeRef(), default="auto",
          doc="The scheme of every weight (default `auto`, chosen per layer from its activation)."),
    Field("seed", Integer(0, SEED_MAX - 1), default=0, doc="0 <= seed < 2^63; always echoed."),
    Field("dtype", Choice(tuple(DTYPES), ref="DType"), default="float32"),
    Field("layout", Choice(LAYOUTS), default="torch",
          doc="Storage shapes: PyTorch's (Linear (out, in); Conv (out, in/groups, *k)) or Keras's (Dense (in, out); "
              "Conv (*k, in/groups, out)). Fans are the same in both."),
    Field("bias", SchemeRef(allow_false=True), default=None, nullable=True,
          doc="The scheme of every bias (default zeros, or the policy's for torch_default / keras_default); `false` "
              "drops the biases of dense, conv, recurrent and attention layers."),
    Field("tensors", TextList(1, MAX_PATTERNS, PATTERN_MAX), default=None, nullable=True,
          doc="Names or glob patterns (fnmatch) selecting a subset of the tensors; every pattern must match one. "
              "Default all."),
    Field("rng", Choice(RNGS), default="weightinit",
          doc="`weightinit`: block-seeded PCG64 streams (parallel, any slice alone). `torch`: replay of PyTorch's CPU "
              "stream after `torch.manual_seed(seed)`, module construction in order, then `torch.nn.init.<scheme>_` "
              "per tensor: the same float32 values PyTorch builds (see each tensor's `torch_call` and `exact`); "
              "sequential, bounded by `max_torch_elements`."),
)
#: Every top-level field name, as the normalized document orders them.
DOC_FIELDS = ("architecture", *(f.name for f in FIELDS))


@dataclass(frozen=True)
class Request:
    """A validated request document."""

    layers: tuple[Layer, ...]
    scheme: dict                 # normalized spec (canonical name, every parameter)
    seed: int
    dtype: str
    layout: str
    bias: object                 # a normalized spec, False (drop biases), or None (each type's default)
    tensors: tuple | None
    rng: str
    #: The Hugging Face model the layers were built from (``architecture.hf_config``), or None.
    hf: HFModel | None = None

    @property
    def document(self) -> dict:
        """The normalized document (echoed in reports, hashed into ETags)."""
        return {
            "architecture": ({"hf_config": self.hf.config} if self.hf is not None
                             else {"layers": [layer.echo for layer in self.layers]}),
            "scheme": self.scheme,
            "seed": self.seed,
            "dtype": self.dtype,
            "layout": self.layout,
            "bias": self.bias,
            "tensors": list(self.tensors) if self.tensors is not None else None,
            "rng": self.rng,
        }
