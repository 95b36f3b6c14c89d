"""What a layer type is: the one owner of everything the service knows about it.

A ``LayerType`` declares its fields (``core.fields``; the boundary validates them and the OpenAPI
document describes them from these declarations), the tensors it owns (names, shapes per layout,
fans), what PyTorch's and Keras's constructors draw for each tensor (``torch_default`` and
``keras_default``), the ``torch.nn`` module it is in PyTorch (``torch_module``: the constructor
replayed by ``rng: torch``, and the draw order of its parameters), and whether the diagnostics can
run it forward. Each type lives in a file of its own under ``core/layers/``; ``core/layers/__init__``
lists them. docs/architecture.md has the recipe for adding one.

Storage layouts: tensors are described in PyTorch's view; the Keras layout stores a weight with
its axes permuted ``(2, ..., r-1, 1, 0)`` (Dense (in, out); Conv (*k, in/groups, out);
ConvTranspose (*k, out/groups, in); recurrent (I, gates*H)); embeddings and 1-D tensors are
stored alike in both layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .. import schemes
from ..activations import Activation
from ..fans import keras_perm, torch_fans
from ..fields import Field, Rule


@dataclass(frozen=True)
class TensorSpec:
    name: str
    layer: str
    layer_index: int
    layer_type: str
    role: str               # weight | bias | norm_weight | norm_bias | raw ; recurrent weights are "weight"
    torch_shape: tuple
    shape: tuple            # storage shape in the request's layout
    fan_in: int
    fan_out: int
    activation: Activation
    groups: int = 1
    gates: int = 1          # recurrent gate blocks (for the LSTM forget-gate bias)
    kind: str = ""          # recurrent: ih | hh ; attention: q | k | v | out
    fan_note: str | None = None
    perm: tuple = ()        # axes taking the PyTorch view to the storage shape
    #: Rows (of the first storage axis) that are zero whatever the scheme: an embedding's padding row,
    #: which nn.Embedding and transformers zero (and which gets no gradient).
    zero_rows: tuple = ()
    #: The layer's role in its model (``core.roles``), when the request or the model family says it.
    layer_role: str | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def suffix(self) -> str:
        """The name within its layer (``weight``, ``q_proj.bias``; "" for a raw tensor)."""
        return self.name[len(self.layer) + 1:] if self.name != self.layer else ""


@dataclass(frozen=True)
class Layer:
    """One validated layer of a request document."""

    index: int
    name: str
    type: str
    activation: Activation
    params: dict            # the type's own fields, validated, defaults filled in
    scheme: dict | None = None        # a layer-level scheme spec (normalized) or None
    bias: Any = None                  # a layer-level bias scheme spec, False, or None
    echo: dict = field(default_factory=dict)  # the layer as the request gave it, normalized (reports echo it)
    #: What a model family (``core.hf``) says about this layer's initialization: ``{"range": r}``, the
    #: hf_config's initializer_range that ``hf_default`` uses unless the scheme names one; ``"why"``: the
    #: family's own _init_weights rule draws the weight N(0, (r x ``factor``)^2) (``factor_text`` says
    #: it; GPT-2's Conv1D, its residual projections at 1/sqrt(2 n_layer)), reading r ``as_given`` (no
    #: ``or 0.02``) when set; ``{"value": v, "why": ...}`` fixes the values whatever the scheme (gemma's
    #: RMSNorm starts at 0).
    init: dict | None = None
    #: What the layer does in its model (``core.roles``): given by the request's ``role`` or the model
    #: family; the recipes (``core.recipes``) read it. None: not said.
    role: str | None = None


#: (torch parameter name, float32 array in PyTorch's shape, exact) as torch.nn modules list them.
TorchParam = tuple[str, Any, bool]

Choice = tuple[dict, str]  # (normalized scheme spec, reason)

#: The transformers release whose ``_init_weights`` rules ``hf_default`` follows (and the model families of
#: ``core.hf`` were checked against: tests/core/hf).
TRANSFORMERS = "5.23.0"


class LayerType:
    """A layer type. Subclasses set the class attributes and override what differs."""

    name: str = ""
    #: The type's own fields (besides type, name, activation, scheme and bias), in document order.
    fields: tuple[Field, ...] = ()
    rules: tuple[Rule, ...] = ()
    #: The request's ``bias`` applies to this type's biases (``false`` drops them).
    biased: bool = False
    #: A normalization layer: its scale and shift start at 1 and 0, whatever the request's scheme.
    norm: bool = False
    #: A normalization layer with a shift (a bias); RMSNorm has a scale only.
    norm_shift: bool = True
    #: How the diagnostics run it forward ("dense", "conv" or "norm"), or None: it cannot run.
    forward: str | None = None
    #: The OpenAPI component describing it (types with the same fields share one), and its text.
    component: str = ""
    summary: str = ""
    #: A valid layer of this type (its own fields): documentation, and every test of the registry.
    example: dict = {}

    @property
    def has_bias(self) -> bool:
        """Whether the type has a bias tensor at all (a layer-level ``bias`` is allowed)."""
        return self.biased or (self.norm and self.norm_shift)

    # -------------------------------------------------------------- tensors
    def tensors(self, layer: Layer, layout: str, with_bias: bool) -> list[TensorSpec]:
        """The tensors the layer owns, in PyTorch's ``named_parameters()`` order."""
        raise NotImplementedError

    @staticmethod
    def tensor(layer: Layer, suffix: str, role: str, torch_shape: tuple, layout: str, fans=None, *,
               permute: bool = True, **kw) -> TensorSpec:
        """A tensor of ``layer`` given in PyTorch's view; its storage shape follows ``layout``."""
        name = f"{layer.name}.{suffix}" if suffix else layer.name
        fan_in, fan_out = fans if fans else torch_fans(torch_shape)
        rank = len(torch_shape)
        perm = keras_perm(rank) if layout == "keras" and permute else tuple(range(rank))
        shape = tuple(torch_shape[i] for i in perm)
        return TensorSpec(name, layer.name, layer.index, layer.type, role, tuple(torch_shape), shape, fan_in, fan_out,
                          layer.activation, perm=perm, layer_role=layer.role, **kw)

    # -------------------------------------------------------------- framework defaults
    def torch_default(self, t: TensorSpec) -> Choice:
        """What PyTorch's module constructor (``reset_parameters``) draws for this tensor."""
        return (schemes.spec("uniform_fan_in"),
                "PyTorch Linear/Conv: kaiming_uniform_(a=sqrt(5)) = U[+-1/sqrt(fan_in)] for the weight, same bound "
                "for the bias")

    def keras_default(self, t: TensorSpec) -> Choice:
        """What the Keras layer's default initializers draw for this tensor."""
        if t.role == "bias":
            return schemes.spec("zeros"), "Keras: bias zeros"
        return schemes.spec("xavier_uniform"), "Keras: kernel glorot_uniform"

    def transformers_default(self, t: TensorSpec, std: float, why: str | None = None) -> Choice:
        """What transformers' ``PreTrainedModel._init_weights`` draws for this tensor: weights of
        Linear, Conv and Embedding modules N(0, std^2) with ``std = initializer_range or 0.02``, biases 0.
        ``why``: the model family's reason when it sets ``std`` itself."""
        if t.role == "bias":
            return schemes.spec("zeros"), f"transformers {TRANSFORMERS} _init_weights: biases 0"
        return (schemes.spec("normal", std=std),
                why or f"transformers {TRANSFORMERS} _init_weights: N(0, initializer_range^2), initializer_range {std:g}")

    # -------------------------------------------------------------- PyTorch
    def torch_construct(self, gen, layer: Layer, with_bias: bool) -> list[TorchParam]:
        """Replay the ``torch.nn`` module's constructor on ``gen`` (a ``core.torch`` generator): its
        parameters in ``named_parameters()`` order. No module (a raw tensor): no draws."""
        return []

    def torch_values(self, layer: Layer, params: list[TorchParam], tensors: list) -> dict:
        """weightinit tensor name -> (float32 array in the PyTorch view, exact), from the constructor's
        parameters (by default the tensor's suffix is the parameter's name)."""
        by_name = {name: (arr, exact) for name, arr, exact in params}
        return {t.name: by_name[t.spec.suffix] for t in tensors}

    def torch_init_order(self, tensors: list) -> list:
        """The tensors in the module's ``named_parameters()`` order (the order init calls draw in)."""
        return tensors


class NormLayerType(LayerType):
    """Normalization layers: a scale (``norm_weight``) and a shift (``norm_bias``) of the normalized shape,
    1 and 0 in both frameworks (no draws)."""

    norm = True

    def torch_default(self, t: TensorSpec) -> Choice:
        if t.role == "norm_weight":
            return schemes.spec("ones"), "PyTorch norms: weight = 1"
        return schemes.spec("zeros"), "PyTorch norms: bias = 0"

    def keras_default(self, t: TensorSpec) -> Choice:
        if t.role == "norm_weight":
            return schemes.spec("ones"), "Keras norms: gamma = 1"
        return schemes.spec("zeros"), "Keras: bias zeros"

    def transformers_default(self, t: TensorSpec, std: float, why: str | None = None) -> Choice:
        if t.role == "norm_weight":
            return schemes.spec("ones"), f"transformers {TRANSFORMERS} _init_weights: norms' weight 1"
        return schemes.spec("zeros"), f"transformers {TRANSFORMERS} _init_weights: norms' bias 0"

    def norm_tensors(self, layer: Layer, layout: str, with_bias: bool, shape: tuple) -> list[TensorSpec]:
        n = math.prod(shape)
        out = [self.tensor(layer, "weight", "norm_weight", shape, layout, fans=(n, n), permute=False)]
        if with_bias:
            out.append(self.tensor(layer, "bias", "norm_bias", shape, layout, fans=(n, n), permute=False))
        return out
