"""The request schemas, generated from the declarations: the layer registry (``core.layers``: each
type's fields and rules), the request document (``core.document``), the formats (``output.formats``)
and the diagnose document (``core.diagnose.request``).

Each schema validates once and loads into the engine's typed objects: a ``core.layers.Layer`` per
layer, a ``core.document.Request`` for the document. Configured *limits* (how many layers, tensors,
elements) are not checked here: they answer 413, not 422 (``service.limits``).
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..core import diagnose, layers
from ..core import document as doc
from ..core.fields import Choice, Field
from ..core.fields import NAME_MAX, NAME_PATTERN, NAME_RULE
from ..core.layers import Layer
from ..output import formats
from .fields import ActivationField, BoundedList, SchemeField, marshmallow_field, schema_class
from .strict import StrictSchema, instance


class LayerBase(StrictSchema):
    """The fields every layer has; each type adds its own (``layer_schema``)."""

    type = fields.String(required=True)
    name = fields.String(validate=[validate.Length(1, NAME_MAX), validate.Regexp(NAME_PATTERN, error=NAME_RULE)])
    activation = ActivationField()
    scheme = SchemeField()
    bias = SchemeField(allow_false=True)


def layer_schema(kind: layers.LayerType) -> type:
    """The schema of one layer type: the common fields, the type's own, and its cross-field rules."""
    attrs = {f.name: marshmallow_field(f) for f in kind.fields}
    if kind.rules:
        @validates_schema
        def _rules(self, data, **kw):
            for rule in kind.rules:
                broken = rule.check(data)
                if broken:
                    raise ValidationError(broken[1], broken[0])

        attrs["_rules"] = _rules
    return type(f"{kind.name.title().replace('_', '')}Layer", (LayerBase,), attrs)


LAYER_SCHEMAS: dict[str, type] = {name: layer_schema(kind) for name, kind in layers.REGISTRY.items()}


class LayerField(fields.Field):
    """A layer object, validated by the schema of its ``type``; loads as (type, values, echo): the
    index and default name come from its position (``RequestSchema``)."""

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, dict):
            raise ValidationError("a layer must be an object")
        t = value.get("type")
        if not isinstance(t, str) or t not in LAYER_SCHEMAS:
            raise ValidationError({"type": [f"Must be one of: {', '.join(LAYER_SCHEMAS)}."]})
        loaded = instance(LAYER_SCHEMAS[t]).load(value)
        # The echo: the layer as the request gave it, in its order, nulls left out, schemes normalized.
        echo = {k: (loaded[k] if k in ("scheme", "bias") and v is not False else v) for k, v in value.items()
                if v is not None}
        return t, loaded, echo


class ArchitectureSchema(StrictSchema):
    layers = BoundedList(LayerField(), required=True, length=validate.Length(1, doc.MAX_LAYERS_HARD))


def _layer(index: int, loaded: tuple) -> Layer:
    t, values, echo = loaded
    params = {k: v for k, v in values.items() if k not in layers.COMMON_FIELDS}
    return Layer(index, values.get("name", str(index)), t, values.get("activation") or _LINEAR, params,
                 scheme=values.get("scheme"), bias=values.get("bias"), echo=echo)


_LINEAR = layers.base.Activation()


class _Architecture(StrictSchema):
    architecture = fields.Nested(ArchitectureSchema, required=True)

    @post_load
    def _typed(self, data, **kw) -> tuple[doc.Request, dict]:
        """The typed request, and the fields a schema adds to the document (``format``, diagnose's)."""
        request = doc.Request(
            layers=tuple(_layer(i, loaded) for i, loaded in enumerate(data["architecture"]["layers"])),
            scheme=data["scheme"], seed=data["seed"], dtype=data["dtype"], layout=data["layout"], bias=data["bias"],
            tensors=tuple(data["tensors"]) if data["tensors"] is not None else None, rng=data["rng"])
        return request, {k: v for k, v in data.items() if k not in doc.DOC_FIELDS}


#: The request document (the public contract; see README): ``architecture``, then the declared fields.
RequestSchema = schema_class("RequestSchema", doc.FIELDS, base=_Architecture)

#: What ``POST /v1/weights`` (and ``/v1/plan``, which ignores it) adds to the request document.
FORMAT = Field("format", Choice(formats.NAMES, ref="Format"),
               doc="The output format of /v1/weights (ignored by /v1/plan); without it, the Accept header picks.")

#: ``POST /v1/weights``: the request document plus an optional ``format`` (the formats registry).
WeightsRequestSchema = schema_class("WeightsRequestSchema", (FORMAT,), base=RequestSchema)

#: ``POST /v1/diagnose``: the request document without ``tensors``, plus schemes, batch, spatial_size.
DiagnoseRequestSchema = schema_class("DiagnoseRequestSchema", diagnose.FIELDS, base=RequestSchema)
