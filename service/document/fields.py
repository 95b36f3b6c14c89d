"""marshmallow fields for the document's kinds (``core.fields``), strict about JSON types.

Every number is bounded, floats are finite, strings are bounded, and nothing is coerced: ``"5"`` is
not 5, ``true`` is not 1, ``3.0`` is not an integer. Lists check their length before their items.
``marshmallow_field`` turns one declared ``core.fields.Field`` into its marshmallow field: the only
place that knows how each kind is validated.
"""

from __future__ import annotations

import math

from marshmallow import ValidationError, fields, utils, validate

from ..core import activations, schemes
from ..core import fields as kinds
from ..core.errors import SpecError
from .strict import StrictSchema, instance

#: A scheme given by name is at most this long; as an object, it has at most this many fields.
SCHEME_NAME_MAX = 64
SCHEME_FIELDS_MAX = 16


class StrictInteger(fields.Integer):
    """An integer: JSON numbers with no fraction only; no bools, no strings, no 3.0."""

    def __init__(self, **kw):
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: true or false, never 1, "true" or "yes"."""

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


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


class SchemeField(fields.Field):
    """A registry name, or ``{"name": ..., <parameters>}``; normalized by the registry (the one owner of
    every scheme's parameters and their ranges)."""

    def __init__(self, allow_false: bool = False, **kw):
        self.allow_false = allow_false
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if value is False and self.allow_false:
            return False
        if isinstance(value, str):
            if len(value) > SCHEME_NAME_MAX:
                raise ValidationError(f"scheme names are at most {SCHEME_NAME_MAX} characters")
        elif isinstance(value, dict):
            if not isinstance(value.get("name"), str):
                raise ValidationError({"name": ["Missing data for required field."]})
            if len(value) > SCHEME_FIELDS_MAX:
                raise ValidationError(f"a scheme object has at most {SCHEME_FIELDS_MAX} fields")
        else:
            raise ValidationError("must be a scheme name or an object with 'name'" + (" (or false)" if self.allow_false else ""))
        try:
            return schemes.normalize_spec(value)
        except SpecError as e:
            raise ValidationError({e.field: [e.message]} if e.field else e.message) from None


class ActivationField(fields.Field):
    """A registry activation: its name, or ``{name, negative_slope}``; loads as an ``Activation``."""

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, str):
            if value not in activations.REGISTRY:
                raise ValidationError(f"Must be one of: {', '.join(activations.NAMES)}.")
            return activations.Activation(value)
        if isinstance(value, dict):
            loaded = instance(ActivationSchema).load(value)
            return activations.Activation(loaded["name"],
                                          float(loaded.get("negative_slope", activations.DEFAULT_LEAKY_SLOPE)))
        raise ValidationError("must be an activation name or {name, negative_slope}")


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
            if not 1 <= len(values) <= kinds.MAX_RANK:
                raise ValidationError(f"must have 1 to {kinds.MAX_RANK} entries")
        else:
            raise ValidationError("must be an integer or a list of integers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValidationError("entries must be integers")
            if not 1 <= v <= kinds.MAX_DIM:
                raise ValidationError(f"entries must be between 1 and {kinds.MAX_DIM}")
        return value


class IntOrShortList(fields.Field):
    """An integer, or a list of 1..max_length integers, each 1..maximum (diagnose's spatial_size)."""

    def __init__(self, max_length: int, maximum: int, **kw):
        self.max_length, self.maximum = max_length, maximum
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(values, list) or not 1 <= len(values) <= self.max_length:
            raise ValidationError(f"must be an integer or a list of 1 or {self.max_length} integers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValidationError("entries must be integers")
            if not 1 <= v <= self.maximum:
                raise ValidationError(f"entries must be between 1 and {self.maximum}")
        return value


class RangeList(fields.Field):
    """A list of ranges ``[first, last]`` (``core.fields.RangeList``): its length checked first, each range
    two integers 0..maximum with first <= last, each range after the previous one."""

    def __init__(self, max_length: int, maximum: int, **kw):
        self.max_length, self.maximum = max_length, maximum
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, list) or len(value) > self.max_length:
            raise ValidationError(f"must be a list of at most {self.max_length} ranges [first, last]")
        previous = -1
        for i, r in enumerate(value):
            if (not isinstance(r, list) or len(r) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in r)):
                raise ValidationError({i: ["must be a range [first, last] of two integers"]})
            first, last = r
            if not 0 <= first <= last <= self.maximum:
                raise ValidationError({i: [f"must have 0 <= first <= last <= {self.maximum}, got {r}"]})
            if first <= previous:
                raise ValidationError({i: [f"must start after the previous range's last entry {previous}, got {r}"]})
            previous = last
        return [tuple(r) for r in value]


class ByteSizeField(fields.Field):
    """A size in bytes (``core.fields.ByteSize``): an integer, or ``"<number><unit>"`` parsed as
    save_pretrained parses ``max_shard_size`` (huggingface_hub ``parse_size_to_int``: KB, MB, GB, TB,
    decimal, any case, ``int(value * unit)``), or with a binary unit (KiB, MiB, GiB, TiB)."""

    UNITS = {"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
             "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12}
    TEXT_MAX = kinds.BYTE_SIZE_TEXT_MAX

    def __init__(self, minimum: int, maximum: int, **kw):
        self.minimum, self.maximum = minimum, maximum
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, str) and len(value) <= self.TEXT_MAX and (m := kinds.BYTE_SIZE_TEXT.fullmatch(value)):
            value = int(float(m.group(1)) * self.UNITS[m.group(2).upper()])
        elif isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError('must be a number of bytes, or a number and a unit: "5GB", "500MB", "2GiB"')
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(f"must be between {self.minimum} and {self.maximum} bytes")
        return value


class NotApplicable(fields.Field):
    """A request-document field this document does not take (null is tolerated)."""

    def __init__(self, why: str, **kw):
        self.why = why
        super().__init__(load_default=None, allow_none=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        raise ValidationError(self.why)


def marshmallow_field(f: kinds.Field) -> fields.Field:
    """The marshmallow field that validates the declared field ``f``. A declared default is given as in a
    document (``"auto"``); the field loads it as it would load the value itself (a normalized scheme)."""
    mf = _field(f)
    if f.default is not kinds.MISSING and f.default is not None:
        mf.load_default = lambda: mf.deserialize(f.default)
    return mf


def _field(f: kinds.Field) -> fields.Field:
    kw = {}
    if f.required:
        kw["required"] = True
    if f.default is not kinds.MISSING:
        kw["load_default"] = f.default
    if f.nullable:
        kw["allow_none"] = True
    k = f.kind
    if isinstance(k, kinds.Integer):
        return StrictInteger(validate=validate.Range(k.minimum, k.maximum), **kw)
    if isinstance(k, kinds.Number):
        return StrictFloat(validate=validate.Range(k.minimum, k.maximum), **kw)
    if isinstance(k, kinds.Boolean):
        return StrictBoolean(**kw)
    if isinstance(k, kinds.ByteSize):
        return ByteSizeField(k.minimum, k.maximum, **kw)
    if isinstance(k, kinds.Choice):
        return fields.String(validate=validate.OneOf(k.choices), **kw)
    if isinstance(k, kinds.Text):
        rules = [validate.Length(k.min_length, k.max_length)]
        if k.pattern:
            rules.append(validate.Regexp(k.pattern, error=k.pattern_error))
        return fields.String(validate=rules, **kw)
    if isinstance(k, kinds.IntOrList):
        return IntOrList(length=k.length, **kw)
    if isinstance(k, kinds.DimList):
        return BoundedList(StrictInteger(validate=validate.Range(1, kinds.MAX_DIM)),
                           length=validate.Length(k.min_length, k.max_length), **kw)
    if isinstance(k, kinds.TextList):
        return BoundedList(fields.String(validate=validate.Length(1, k.item_max)),
                           length=validate.Length(k.min_length, k.max_length), **kw)
    if isinstance(k, kinds.SchemeRef):
        return SchemeField(allow_false=k.allow_false, **kw)
    if isinstance(k, kinds.SchemeList):
        return BoundedList(SchemeField(), length=validate.Length(k.min_length, k.max_length), **kw)
    if isinstance(k, kinds.ActivationRef):
        return ActivationField(**kw)
    if isinstance(k, kinds.IntOrShortList):
        return IntOrShortList(k.max_length, k.maximum, **kw)
    if isinstance(k, kinds.RangeList):
        return RangeList(k.max_length, k.maximum, **kw)
    if isinstance(k, kinds.Object):
        return fields.Nested(schema_class(k.ref or "Object", k.fields), **kw)
    if isinstance(k, kinds.NotApplicable):
        return NotApplicable(k.why)
    raise TypeError(f"no marshmallow field for {type(k).__name__}")  # every kind of core.fields is above


def schema_class(name: str, declared, base=StrictSchema) -> type:
    """A schema class with a marshmallow field for each declared field, in declaration order."""
    return type(name, (base,), {f.name: marshmallow_field(f) for f in declared})


#: The object form of ``activation``.
ActivationSchema = schema_class("ActivationSchema", activations.OBJECT_FIELDS)
