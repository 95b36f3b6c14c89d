"""What the encoder-decoder recipes (``deepnorm``, ``t_fixup``) share: which stack a layer is in, how deep
each stack is, which projections they scale; and, for every recipe that reads roles (``mup``, ``fixup``
too), the role check and the field path of a recipe parameter in an error.

A DeepNet or T-Fixup constant depends on the model (encoder-only, decoder-only, encoder-decoder), on
the stack the tensor is in and on the layer counts N (encoder) and M (decoder). A single stack defaults
to its own depth (the hf_config's layer count, else the number of ``attn_out`` layers); an
encoder-decoder model says both counts, and each layer says its stack with a per-layer scheme
(``{"name": "deepnorm", "model": "encoder_decoder", "part": "decoder", ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..scheme_entry import Param
from .base import Model

MODELS = ("encoder", "decoder", "encoder_decoder")
#: The projections DeepNet and T-Fixup scale: value, output and the MLP (q and k only shape the attention).
SCALED = ("attn_v", "attn_out", "mlp_in", "mlp_out")
PARTS = ("encoder", "decoder")
MAX_LAYERS = 1 << 20


def params(default_model: str) -> tuple[Param, ...]:
    return (
        Param("model", "string", default_model, choices=MODELS, doc="the model: encoder-only, decoder-only or both"),
        Param("part", "string", None, choices=PARTS,
              doc="the stack this layer is in (default: the model's own; an encoder_decoder needs it, per layer)"),
        Param("encoder_layers", "integer", None, minimum=1, maximum=MAX_LAYERS,
              doc="N, encoder layers (default for an encoder: the hf_config's, else the number of attn_out layers)"),
        Param("decoder_layers", "integer", None, minimum=1, maximum=MAX_LAYERS,
              doc="M, decoder layers (default for a decoder: the hf_config's, else the number of attn_out layers)"),
    )


def param_field(layer, spec: dict, name: str) -> str:
    """The field path of the recipe's parameter ``name``: the layer's scheme when the layer names the recipe,
    else the request's."""
    if layer.scheme is not None and layer.scheme["name"] == spec["name"]:
        return f"architecture.layers.{layer.index}.scheme.{name}"
    return f"scheme.{name}"


@dataclass(frozen=True)
class Stacks:
    model: str        # encoder | decoder | encoder_decoder
    part: str         # the stack of this layer: encoder | decoder
    n: int | None     # encoder layers (None for a decoder-only model)
    m: int | None     # decoder layers (None for an encoder-only model)
    source: str       # where the counts come from, for the reason

    @property
    def where(self) -> str:
        return self.model if self.model != "encoder_decoder" else f"encoder_decoder {self.part}"


def stacks(layer, spec: dict, model: Model) -> Stacks:
    """The stack of ``layer`` and the layer counts, or a SpecError naming the missing parameter. A layer's own
    scheme of this recipe rules its biases too (``core.policies`` hands them the request's scheme)."""
    if layer.scheme is not None and layer.scheme["name"] == spec["name"]:
        spec = layer.scheme
    kind = spec["model"]
    part = spec["part"]
    if kind == "encoder_decoder":
        for name in ("part", "encoder_layers", "decoder_layers"):
            if spec[name] is None:
                raise SpecError(param_field(layer, spec, name),
                                f"an encoder_decoder model needs {name} (each layer's stack and both layer counts)")
        return Stacks(kind, part, spec["encoder_layers"], spec["decoder_layers"], "the scheme's")
    if part is not None and part != kind:
        raise SpecError(param_field(layer, spec, "part"), f"a {kind}-only model has no {part} (got part {part!r})")
    name = f"{kind}_layers"
    count, source = spec[name], "the scheme's"
    if count is None:
        count, source = model.blocks, "the model's"
        if not count:
            raise SpecError(param_field(layer, spec, name),
                            f"give {name}: the model has no hf_config and no attn_out layer to count its layers by")
    return Stacks(kind, kind, count if kind == "encoder" else None, count if kind == "decoder" else None, source)


def require_role(t, layer, spec: dict, accepted: str) -> str:
    """The tensor's layer role, or a SpecError on the layer's ``role``: the recipe needs it."""
    if t.layer_role is None:
        raise SpecError(f"architecture.layers.{layer.index}.role",
                        f"{spec['name']} initializes by role: give layer {layer.name!r} a role ({accepted})")
    return t.layer_role


def transformer_role(t, layer, spec: dict, accepted: str) -> str:
    """The layer role of a tensor DeepNet or T-Fixup initializes: required, and q, k, v apart."""
    role = require_role(t, layer, spec, accepted)
    if role == "attn_qkv" and t.layer_type == "hf_conv1d":
        raise SpecError(param_field(layer, spec, "name"),
                        f"{spec['name']} scales v but not q and k; {layer.name!r} packs all three in one tensor (split it)")
    return role


def scaled(t, role: str) -> bool:
    """Whether the tensor is one of the SCALED projections (an attention layer's own: kinds v and out)."""
    if t.layer_type == "attention":
        return t.kind in ("v", "out")
    return role in SCALED
