"""The request schemas, generated from the declarations: the layer registry (``core.layers``: each
type's fields and rules), the request document (``core.document``), the formats (``output.formats``)
the diagnose document (``core.diagnose.request``) and the calibrate document (``core.calibrate.request``).

Each schema validates once and loads into the engine's typed objects: a ``core.layers.Layer`` per
layer, a ``core.document.Request`` for the document. Configured *limits* (how many layers, tensors,
elements) are not checked here: they answer 413, not 422 (``service.limits``).
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..core import calibrate, diagnose, hf, layers, roles, schemes
from ..core import document as doc
from ..core.fields import Choice, Field
from ..core.fields import NAME_MAX, NAME_PATTERN, NAME_RULE
from ..core.layers import Layer
from ..output import formats, options
from .hf import HFConfigField
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
    attrs["role"] = fields.String(validate=validate.OneOf(roles.for_type(kind.name, kind.norm)))
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
    """``{"layers": [...]}`` or ``{"hf_config": {...}}``: exactly one of the two."""

    layers = BoundedList(LayerField(), length=validate.Length(1, doc.MAX_LAYERS_HARD))
    hf_config = HFConfigField()

    @validates_schema
    def _one_of(self, data, **kw):
        if "layers" in data and "hf_config" in data:
            raise ValidationError("give either layers or hf_config, not both", "hf_config")
        if "layers" not in data and "hf_config" not in data:
            raise ValidationError("Missing data for required field.", "layers")


def _layer(index: int, loaded: tuple) -> Layer:
    t, values, echo = loaded
    params = {k: v for k, v in values.items() if k not in layers.COMMON_FIELDS}
    return Layer(index, values.get("name", str(index)), t, values.get("activation") or _LINEAR, params,
                 scheme=values.get("scheme"), bias=values.get("bias"), echo=echo, role=values.get("role"))


_LINEAR = layers.base.Activation()


class _Architecture(StrictSchema):
    architecture = fields.Nested(ArchitectureSchema, required=True)
    #: Whether ``architecture.hf_config`` is accepted (/v1/diagnose and /v1/calibrate run layers forward: it
    #: is not), and the path named when it is refused.
    takes_hf_config = True
    endpoint = "/v1/weights"

    @post_load(pass_original=True)
    def _typed(self, data, original, **kw) -> tuple[doc.Request, dict]:
        """The typed request, and the fields a schema adds to the document (``format``, diagnose's)."""
        model = data["architecture"].get("hf_config")
        if model is None:
            built = tuple(_layer(i, loaded) for i, loaded in enumerate(data["architecture"]["layers"]))
        else:
            built = model.layers
            data.update(_hf_defaults(self, model, original))
        request = doc.Request(
            layers=built, scheme=data["scheme"], seed=data["seed"], dtype=data["dtype"], layout=data["layout"],
            bias=data["bias"], tensors=tuple(data["tensors"]) if data["tensors"] is not None else None,
            rng=data["rng"], hf=model)
        return request, {k: v for k, v in data.items() if k not in doc.DOC_FIELDS}


def _hf_defaults(schema: _Architecture, model, original: dict) -> dict:
    """What an hf_config changes in the document: scheme ``hf_default`` and the config's dtype unless the
    request names them; and what it cannot take (a Keras layout, the torch replay, /v1/diagnose)."""
    if not schema.takes_hf_config:
        raise ValidationError({"architecture": {"hf_config": [
            f"{schema.endpoint} runs an architecture of layers forward; send architecture.layers"]}})
    if original.get("layout", "torch") != "torch":
        raise ValidationError({"layout": ["an hf_config's tensors are stored as transformers stores them: "
                                          "layout must be torch"]})
    if original.get("rng", "weightinit") != "weightinit":
        raise ValidationError({"rng": ["the PyTorch replay of an hf_config (torch.manual_seed, then from_config) "
                                       "is not built: rng must be weightinit"]})
    out = {}
    if "scheme" not in original:
        out["scheme"] = schemes.normalize_spec("hf_default")
    if "dtype" not in original:
        named = hf.config_dtype(model.config)
        if named is not None and model.dtype is None:
            key = next(k for k in hf.DTYPE_KEYS if isinstance(model.config.get(k), str))
            raise ValidationError({"architecture": {"hf_config": {key: [
                f"{named[:32]!r} is not a dtype weightinit writes ({', '.join(doc.DTYPES)}); name the request's "
                f"dtype to choose one"]}}})
        if model.dtype is not None:
            out["dtype"] = model.dtype
    return out


#: The request document (the public contract; see README): ``architecture``, then the declared fields.
RequestSchema = schema_class("RequestSchema", doc.FIELDS, base=_Architecture)

#: What ``POST /v1/weights`` (and ``/v1/plan``, which ignores it) adds to the request document.
FORMAT = Field("format", Choice(formats.NAMES, ref="Format"),
               doc="The output format of /v1/weights (ignored by /v1/plan); without it, the Accept header picks.")

#: ``POST /v1/weights``: the request document plus an optional ``format`` (the formats registry) and the
#: output options (``output.options``: safetensors ``metadata``, hf ``max_shard_size``).
WeightsRequestSchema = schema_class("WeightsRequestSchema", (FORMAT, *options.FIELDS), base=RequestSchema)

#: The output options alone (``weightinit fetch`` reads them from a document to name the artifact's ETag).
OptionsSchema = schema_class("OptionsSchema", options.FIELDS)

#: ``POST /v1/diagnose``: the request document without ``tensors``, plus schemes, batch, spatial_size.
DiagnoseRequestSchema = schema_class("DiagnoseRequestSchema", diagnose.FIELDS, base=RequestSchema)
DiagnoseRequestSchema.takes_hf_config = False
DiagnoseRequestSchema.endpoint = "/v1/diagnose"

#: ``POST /v1/calibrate``: the weights request document (``format``, the output options) without ``tensors``,
#: with ``scheme`` defaulting to orthogonal, plus ``calibration``.
CalibrateRequestSchema = schema_class("CalibrateRequestSchema", (FORMAT, *options.FIELDS, *calibrate.FIELDS),
                                      base=RequestSchema)
CalibrateRequestSchema.takes_hf_config = False
CalibrateRequestSchema.endpoint = "/v1/calibrate"
