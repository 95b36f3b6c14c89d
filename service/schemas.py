"""marshmallow 4 schemas for every request body: the structural gate before the engine.

Unknown fields are rejected, every number is bounded, floats are finite, strings are
bounded, and strings are never coerced to numbers (``"5"`` is not 5, ``true`` is not 1).
Scheme parameters are checked by the engine's registry (``service.core.schemes``), the one
place that knows them, and reported here as field errors. Configured *limits* (how many
layers, tensors, elements) are not checked here: they answer 413, not 422 (``service.limits``).
"""

from __future__ import annotations

import math
import threading

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, utils, validate, validates_schema

from .core import schemes
from .core.dtypes import DTYPES
from .core.errors import SpecError
from .core.gains import ACTIVATIONS
from .core.layers import CONV_DIMS, LAYER_FIELDS, MAX_DIM, MAX_RANK, NAME_MAX
from .core.plan import LAYOUTS, RNGS, SEED_MAX
from .encoders import FORMATS

#: Structural ceilings (the configured limits are far lower; these only bound parsing work).
MAX_LAYERS_HARD = 10_000
MAX_PATTERNS = 1_024
NAME_PATTERN = r"^[A-Za-z0-9_](?:[A-Za-z0-9_\-]|\.(?!\.))*(?<!\.)$"


class StrictSchema(Schema):
    """A schema that rejects unknown fields, named in the order the document gives them.

    marshmallow's own ``unknown = RAISE`` check runs after every known field and walks a set:
    unknown fields come out in a hash order that changes from one process to the next, at some
    30 us each (a 1 MiB object of unknown keys cost 1.7 s). Checked here first, in document
    order, at a few hundred ns each: an object with unknown fields is reported for those alone."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _unknown_fields_first(self, data, **kw):
        if isinstance(data, dict):
            known = self.load_fields
            unknown = [k for k in data if k not in known]
            if unknown:
                raise ValidationError({k: ["Unknown field."] for k in unknown})
        return data


class StrictInteger(fields.Integer):
    """An integer: JSON numbers with no fraction only; no bools, no strings, no 3.0."""

    def __init__(self, **kw):
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)


class StrictFloat(fields.Float):
    """A finite JSON number; no bools, no strings."""

    def __init__(self, **kw):
        super().__init__(allow_nan=False, **kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("special")
        return super()._deserialize(value, attr, data, **kw)


class BoundedList(fields.List):
    """A list whose length is checked before its items: marshmallow's ``List`` validates every
    item first and its length last, so 500,000 bad items cost 500,000 errors (seconds of CPU and
    a 50 MB problem body) before "too long" is said. Same message as the ``Length`` validator."""

    def __init__(self, inner, *, length: validate.Length, **kw):
        self.length = length
        super().__init__(inner, validate=length, **kw)

    def _deserialize(self, value, attr, data, **kw):
        if utils.is_collection(value):
            self.length(value)
        return super()._deserialize(value, attr, data, **kw)


def _dim(**kw):
    return StrictInteger(validate=validate.Range(1, MAX_DIM), **kw)


class SchemeField(fields.Field):
    """A registry name, or ``{"name": ..., <parameters>}``; normalized by the registry."""

    def __init__(self, allow_false: bool = False, **kw):
        self.allow_false = allow_false
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if value is False and self.allow_false:
            return False
        if isinstance(value, str):
            if len(value) > 64:
                raise ValidationError("scheme names are at most 64 characters")
        elif isinstance(value, dict):
            if not isinstance(value.get("name"), str):
                raise ValidationError({"name": ["Missing data for required field."]})
            if len(value) > 16:
                raise ValidationError("a scheme object has at most 16 fields")
        else:
            raise ValidationError("must be a scheme name or an object with 'name'" + (" (or false)" if self.allow_false else ""))
        try:
            return schemes.normalize_spec(value)
        except SpecError as e:
            raise ValidationError({e.field: [e.message]} if e.field else e.message) from None


class ActivationField(fields.Field):
    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, str):
            if value not in ACTIVATIONS:
                raise ValidationError(f"Must be one of: {', '.join(ACTIVATIONS)}.")
            return value
        if isinstance(value, dict):
            return _instance(ActivationSchema).load(value)
        raise ValidationError("must be an activation name or {name, negative_slope}")


class ActivationSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.OneOf(ACTIVATIONS))
    negative_slope = StrictFloat(validate=validate.Range(0, 1e3))


class IntOrList(fields.Field):
    """kernel_size / normalized_shape: an integer or a list of integers."""

    def __init__(self, length: int | None = None, **kw):
        self.length = length
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, int) and not isinstance(value, bool):
            values = [value]
        elif isinstance(value, list):
            values = value
            if self.length is not None and len(values) != self.length:
                raise ValidationError(f"must have {self.length} entries, got {len(values)}")
            if not 1 <= len(values) <= MAX_RANK:
                raise ValidationError(f"must have 1 to {MAX_RANK} entries")
        else:
            raise ValidationError("must be an integer or a list of integers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValidationError("entries must be integers")
            if not 1 <= v <= MAX_DIM:
                raise ValidationError(f"entries must be between 1 and {MAX_DIM}")
        return value


class _LayerBase(StrictSchema):
    type = fields.String(required=True)
    name = fields.String(validate=[validate.Length(1, NAME_MAX), validate.Regexp(
        NAME_PATTERN, error="may hold only ASCII letters, digits, '_', '-' and single inner '.'")])
    activation = ActivationField()
    scheme = SchemeField()
    bias = SchemeField(allow_false=True)


class DenseLayer(_LayerBase):
    in_features = _dim(required=True)
    out_features = _dim(required=True)


def _conv_schema(t: str, d: int):
    class ConvLayer(_LayerBase):
        in_channels = _dim(required=True)
        out_channels = _dim(required=True)
        kernel_size = IntOrList(length=d, required=True)
        groups = _dim(load_default=1)

        @validates_schema
        def _groups_divide(self, data, **kw):
            g = data.get("groups", 1)
            for key in ("in_channels", "out_channels"):
                if key in data and data[key] % g:
                    raise ValidationError(f"groups ({g}) must divide {key} ({data[key]})", "groups")

    ConvLayer.__name__ = f"{t}Layer"
    return ConvLayer


class EmbeddingLayer(_LayerBase):
    num_embeddings = _dim(required=True)
    embedding_dim = _dim(required=True)


class RecurrentLayer(_LayerBase):
    input_size = _dim(required=True)
    hidden_size = _dim(required=True)


class BatchNormLayer(_LayerBase):
    num_features = _dim(required=True)


class LayerNormLayer(_LayerBase):
    normalized_shape = IntOrList(required=True)


class AttentionLayer(_LayerBase):
    embed_dim = _dim(required=True)
    num_heads = _dim(required=True)

    @validates_schema
    def _heads_divide(self, data, **kw):
        if "embed_dim" in data and "num_heads" in data and data["embed_dim"] % data["num_heads"]:
            raise ValidationError(f"embed_dim ({data['embed_dim']}) must be divisible by num_heads ({data['num_heads']})",
                                  "embed_dim")


class TensorLayer(_LayerBase):
    shape = BoundedList(_dim(), required=True, length=validate.Length(1, MAX_RANK))
    fan_in = _dim()
    fan_out = _dim()


LAYER_SCHEMAS: dict[str, type[Schema]] = {
    "dense": DenseLayer,
    **{t: _conv_schema(t, d) for t, d in CONV_DIMS.items()},
    "embedding": EmbeddingLayer,
    "rnn": RecurrentLayer, "lstm": RecurrentLayer, "gru": RecurrentLayer,
    "batchnorm": BatchNormLayer,
    "layernorm": LayerNormLayer,
    "attention": AttentionLayer,
    "tensor": TensorLayer,
}
assert set(LAYER_SCHEMAS) == set(LAYER_FIELDS), "every engine layer type needs a schema"


class LayerField(fields.Field):
    """A layer object, validated by the schema of its ``type``."""

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, dict):
            raise ValidationError("a layer must be an object")
        t = value.get("type")
        if not isinstance(t, str) or t not in LAYER_SCHEMAS:
            raise ValidationError({"type": [f"Must be one of: {', '.join(LAYER_SCHEMAS)}."]})
        loaded = _instance(LAYER_SCHEMAS[t]).load(value)
        return {k: v for k, v in loaded.items()}


class ArchitectureSchema(StrictSchema):
    layers = BoundedList(LayerField(), required=True, length=validate.Length(1, MAX_LAYERS_HARD))


class RequestSchema(StrictSchema):
    """The request document (the public contract; see README)."""

    architecture = fields.Nested(ArchitectureSchema, required=True)
    scheme = SchemeField(load_default="auto")
    seed = StrictInteger(load_default=0, validate=validate.Range(0, SEED_MAX - 1))
    dtype = fields.String(load_default="float32", validate=validate.OneOf(tuple(DTYPES)))
    layout = fields.String(load_default="torch", validate=validate.OneOf(LAYOUTS))
    bias = SchemeField(allow_false=True, load_default=None, allow_none=True)
    tensors = BoundedList(fields.String(validate=validate.Length(1, 256)), load_default=None, allow_none=True,
                          length=validate.Length(1, MAX_PATTERNS))
    rng = fields.String(load_default="weightinit", validate=validate.OneOf(RNGS))


class WeightsRequestSchema(RequestSchema):
    """``POST /v1/weights``: the request document plus an optional ``format``."""

    format = fields.String(validate=validate.OneOf(FORMATS))


def load_request(data, schema: type[Schema] = RequestSchema) -> dict:
    """Validate a request body; raises marshmallow.ValidationError with per-field messages."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["the request body must be a JSON object"]})
    return _instance(schema).load(data)


_LOCAL = threading.local()


def _instance(schema: type[Schema]) -> Schema:
    """One instance of each schema per thread, reused: building a marshmallow schema deep-copies
    its declared fields (about half of a small request's validation time). Loading keeps no
    state on the instance (marshmallow 4 has no context); per thread all the same, to be safe."""
    cache = _LOCAL.__dict__.setdefault("schemas", {})
    inst = cache.get(schema)
    if inst is None:
        inst = cache[schema] = schema()
    return inst


def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages -> {"architecture.layers.0.in_features": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for k, v in messages.items():
            key = prefix if k == "_schema" and prefix else f"{prefix}.{k}" if prefix else str(k)
            for field, msgs in flatten_messages(v, key).items():
                out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list):
        for m in messages:
            for field, msgs in flatten_messages(m, prefix).items():
                out.setdefault(field, []).extend(msgs)
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out
