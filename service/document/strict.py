"""The base of every request schema: unknown fields rejected first, in document order; a lean
path through marshmallow for documents that pass; one reused instance of each schema per thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from marshmallow import RAISE, Schema, ValidationError, missing, pre_load
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

#: How the schema loads on this thread run: None outside any load, "lean" inside a lean one (a
#: nested schema's error goes up to the outermost), "standard" inside marshmallow's own.
_MODE = threading.local()


class StrictSchema(Schema):
    """A schema that rejects unknown fields, named in the order the document gives them, and loads
    a valid document along a lean path.

    marshmallow's own ``unknown = RAISE`` check runs after every known field and walks a set:
    unknown fields come out in a hash order that changes from one process to the next, at some
    30 us each (a 1 MiB object of unknown keys cost 1.7 s). Checked here first, in document
    order, at a few hundred ns each: an object with unknown fields is reported for those alone.

    ``load`` first runs what marshmallow's ``load`` runs for a valid document, in the same order
    and with the same fields (pre-load hooks, every field's ``deserialize``, the schema's
    validators, post-load hooks), but not the bookkeeping that collects every error of an invalid
    one: per field a closure, an error store and a dotted-key setter, per schema a set of the
    known keys. That is about half of a small request's validation. At the first error it stops,
    and marshmallow's own ``load`` validates the document again and raises what it always raised,
    every message and field path included (tests/corpus pins them): the lean path decides
    nothing, it only returns sooner what marshmallow would return."""

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

    def load(self, data, *, many=None, partial=None, unknown=None):
        mode = getattr(_MODE, "mode", None)
        if (mode == "standard" or many or partial or self.many or self.partial or unknown not in (None, self.unknown)
                or not self._lean):
            return super().load(data, many=many, partial=partial, unknown=unknown)
        if mode == "lean":
            return self._lean_load(data)
        _MODE.mode = "lean"
        try:
            return self._lean_load(data)
        except ValidationError:
            pass  # marshmallow's own load says what is wrong, all of it
        finally:
            _MODE.mode = None
        _MODE.mode = "standard"
        try:
            return super().load(data, many=many, partial=partial, unknown=unknown)
        finally:
            _MODE.mode = None

    @property
    def _lean(self) -> bool:
        """Whether the lean path runs exactly what marshmallow runs for this schema: no field-level
        ``@validates``, no hook on collections or on the original data, every field loaded under
        its own name (no ``data_key``, ``attribute`` or dotted name)."""
        cls = type(self)
        lean = cls.__dict__.get("_lean_checked")
        if lean is None:
            hooks = [h for tag in (PRE_LOAD, VALIDATES_SCHEMA, POST_LOAD) for h in self._hooks[tag]]
            lean = (not self._hooks[VALIDATES] and not any(many or kw.get("pass_original") for _, many, kw in hooks)
                    and all(f.data_key is None and f.attribute is None and "." not in name
                            for name, f in self.load_fields.items()))
            cls._lean_checked = lean
        return lean

    def _lean_load(self, data):
        kw = {"many": False, "partial": None, "unknown": self.unknown}
        for name, _, _ in self._hooks[PRE_LOAD]:
            data = getattr(self, name)(data, **kw)
        if not isinstance(data, Mapping):
            raise ValidationError("not an object")  # marshmallow's load words it
        result = {}
        for name, field in self.load_fields.items():
            value = field.deserialize(data.get(name, missing), name, data)
            if value is not missing:
                result[name] = value
        for name, _, _ in self._hooks[VALIDATES_SCHEMA]:
            getattr(self, name)(result, **kw)
        for name, _, _ in self._hooks[POST_LOAD]:
            result = getattr(self, name)(result, **kw)
        return result


_LOCAL = threading.local()


def instance(schema: type[Schema]) -> Schema:
    """One instance of each schema per thread, reused: building a marshmallow schema deep-copies
    its declared fields (about half of a small request's validation time). Loading keeps no
    state on the instance (marshmallow 4 has no context); per thread all the same, to be safe."""
    cache = _LOCAL.__dict__.setdefault("schemas", {})
    inst = cache.get(schema)
    if inst is None:
        inst = cache[schema] = schema()
    return inst
