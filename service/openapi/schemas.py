"""The OpenAPI schemas of the request documents, generated from the declarations.

``kind_schema`` is the one place that says what each ``core.fields`` kind looks like in JSON Schema,
as ``service.document.fields.marshmallow_field`` is the one place that validates it: the two accept
the same values (tests/openapi/test_schemas.py tries both on the same values), except where
JSON Schema cannot follow (``3.0`` is an integer to it; rules across fields, such as groups dividing
the channels, are the boundary's alone: each layer component says them in its description).

``Components`` collects the generated components: asking for a kind with a ``ref`` (``Dim``,
``DType``, ``KernelSize2d``, ...) or for a named component (``Layer``, ``SchemeSpec``, ...) answers
its ``$ref`` and queues the component, so that every component referenced is generated once, in
the order it is first met (breadth first from the request documents).
"""

from __future__ import annotations

from typing import Callable

from ..core import (
    activations,
    calibrate,
    diagnose,
    gains,
    hf,
    layers,
    roles,
    scheme_entry,
    schemes,
)
from ..core import document as doc
from ..core import fields as kinds
from ..core.layers import LayerType

Schema = dict
NULL = {"type": "null"}
FALSE = {"type": "boolean", "const": False}
#: A size (``core.fields.dim``): entries of every list of sizes.
DIM = kinds.dim("size").kind


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


class Components:
    """Generated components by name, in the order they were first referenced."""

    def __init__(self):
        self.schemas: dict[str, Schema] = {}
        self._queue: list[tuple[str, Callable[[], Schema]]] = []
        self._owner: dict[str, object] = {}

    def ref(self, name: str, make: Callable[[], Schema], owner: object = None) -> Schema:
        """``$ref`` to the component ``name``, made by ``make()`` when first asked for. ``owner`` (a kind)
        says what it describes: two different kinds claiming one name is an error."""
        if name in self._owner:
            if self._owner[name] != owner:
                raise ValueError(f"component {name} is claimed by {self._owner[name]!r} and {owner!r}")
        else:
            self._owner[name] = owner
            self._queue.append((name, make))
        return ref(name)

    def generate(self, roots: dict[str, Callable[[], Schema]]) -> dict[str, Schema]:
        """Every component reachable from ``roots``, breadth first."""
        for name, make in roots.items():
            self.ref(name, make, name)
        while self._queue:
            name, make = self._queue.pop(0)
            self.schemas[name] = make()
        return self.schemas

    # ------------------------------------------------------------------ kinds and fields
    def kind(self, k: kinds.Kind) -> Schema:
        """The schema of a value of kind ``k``: a ``$ref`` when the kind names a shared component."""
        if k.ref:
            return self.ref(k.ref, lambda: self.kind_schema(k), k)
        return self.kind_schema(k)

    def kind_schema(self, k: kinds.Kind) -> Schema:
        """What ``service.document.fields`` accepts for kind ``k`` (every kind of ``core.fields``)."""
        if isinstance(k, kinds.Integer):
            return {"type": "integer", "minimum": k.minimum, "maximum": k.maximum}
        if isinstance(k, kinds.Number):
            return {"type": "number", "minimum": k.minimum, "maximum": k.maximum}
        if isinstance(k, kinds.Boolean):
            return {"type": "boolean"}
        if isinstance(k, kinds.ByteSize):
            return {"oneOf": [{"type": "integer", "minimum": k.minimum, "maximum": k.maximum},
                              {"type": "string", "maxLength": kinds.BYTE_SIZE_TEXT_MAX, "pattern": kinds.BYTE_SIZE_PATTERN,
                               "examples": ["5GB", "500MB", "2GiB"]}]}
        if isinstance(k, kinds.Choice):
            return {"type": "string", "enum": list(k.choices)}
        if isinstance(k, kinds.Text):
            return {"type": "string", "minLength": k.min_length, "maxLength": k.max_length,
                    **({"pattern": k.pattern} if k.pattern else {})}
        if isinstance(k, kinds.IntOrList):
            return {"oneOf": [self.kind(DIM), {"type": "array", "items": self.kind(DIM), "minItems": k.length or 1,
                                               "maxItems": k.length or kinds.MAX_RANK}]}
        if isinstance(k, kinds.DimList):
            return {"type": "array", "items": self.kind(DIM), "minItems": k.min_length, "maxItems": k.max_length}
        if isinstance(k, kinds.TextList):
            return {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": k.item_max},
                    "minItems": k.min_length, "maxItems": k.max_length}
        if isinstance(k, kinds.SchemeRef):
            spec = self.scheme_spec()
            return {"oneOf": [spec, FALSE]} if k.allow_false else spec
        if isinstance(k, kinds.ActivationRef):
            return {"oneOf": [self.kind(kinds.Choice(activations.NAMES, ref="ActivationName")),
                              self.object(activations.OBJECT_FIELDS)]}
        if isinstance(k, kinds.SchemeList):
            return {"type": "array", "items": self.scheme_spec(), "minItems": k.min_length, "maxItems": k.max_length}
        if isinstance(k, kinds.IntOrShortList):
            entry = {"type": "integer", "minimum": 1, "maximum": k.maximum}
            return {"oneOf": [entry, {"type": "array", "items": entry, "minItems": 1, "maxItems": k.max_length}]}
        if isinstance(k, kinds.RangeList):
            entry = {"type": "integer", "minimum": 0, "maximum": k.maximum}
            pair = {"type": "array", "items": entry, "minItems": 2, "maxItems": 2,
                    "description": "[first, last] (first <= last; each range after the previous one)"}
            return {"type": "array", "items": pair, "maxItems": k.max_length}
        if isinstance(k, kinds.Object):
            return self.object(k.fields)
        if isinstance(k, kinds.NotApplicable):
            return {"description": f"{k.why} (only null is accepted)", **NULL}
        raise TypeError(f"no OpenAPI schema for {type(k).__name__}")  # every kind of core.fields is above

    def field(self, f: kinds.Field) -> Schema:
        """A declared field's property: its kind, null when the boundary accepts it (marshmallow: a
        nullable field, or a default of None), its default and its documentation."""
        schema = self.kind(f.kind)
        if f.nullable or f.default is None:
            schema = {"oneOf": [*schema["oneOf"], NULL]} if list(schema) == ["oneOf"] else {"oneOf": [schema, NULL]}
        return {**({"description": f.doc} if f.doc else {}), **schema,
                **({"default": f.default} if f.default is not kinds.MISSING else {})}

    def object(self, declared, *, first: dict | None = None, required: tuple[str, ...] = ()) -> Schema:
        """A closed object (unknown fields are a 422): ``first`` (properties given as schemas), then the
        declared fields, in order (a later declaration of a name replaces the earlier in its place)."""
        fields = {f.name: f for f in declared}
        properties = {**(first or {}), **{name: self.field(f) for name, f in fields.items()}}
        names = [*required, *(name for name, f in fields.items() if f.required and name not in required)]
        return {"type": "object", **({"required": names} if names else {}), "additionalProperties": False,
                "properties": properties}

    # ------------------------------------------------------------------ named components
    def scheme_spec(self) -> Schema:
        return self.ref("SchemeSpec", lambda: {"oneOf": [self.scheme_name(),
                                                         self.ref("SchemeObject", self.scheme_object)]})

    def scheme_name(self) -> Schema:
        return self.ref("SchemeName", lambda: {"type": "string", "enum": list(schemes.ALL_NAMES)})

    def scheme_object(self) -> Schema:
        """One object per registry scheme, told apart by ``name`` (canonical or alias)."""
        refs = {name: self.ref(f"Scheme_{name}", lambda s=scheme: self.scheme(s))
                for name, scheme in schemes.SCHEMES.items()}
        mapping = {n: refs[s.name]["$ref"] for s in schemes.SCHEMES.values() for n in (s.name, *s.aliases)}
        return {"oneOf": list(refs.values()), "discriminator": {"propertyName": "name", "mapping": mapping}}

    def scheme(self, s: scheme_entry.Scheme) -> Schema:
        """A registry scheme with its parameters: types, defaults and ranges as ``Param.check`` applies them."""
        properties = {"name": {"type": "string", "enum": [s.name, *s.aliases]}}
        for p in s.params:
            properties[p.name] = {"description": p.doc, **self.param(p),
                                  **({"default": p.default} if not p.required else {})}
        return {"title": s.name,
                "description": s.summary + (f". Aliases: {', '.join(s.aliases)}" if s.aliases else ""),
                "type": "object", "required": ["name", *(p.name for p in s.params if p.required)],
                "additionalProperties": False, "properties": properties}

    def param(self, p: scheme_entry.Param) -> Schema:
        # null is a value only where the default is null (Scheme.check_params): dirac's groups, deepnorm's part
        nullable = p.default is None and not p.required
        if p.type == "boolean":
            return {"type": "boolean"}
        if p.type == "string":
            if nullable:
                return {"type": ["string", "null"], "enum": [*p.choices, None]}
            return {"type": "string", "enum": list(p.choices)}
        lo = -scheme_entry.MAX_MAGNITUDE if p.minimum is None else p.minimum
        hi = scheme_entry.MAX_MAGNITUDE if p.maximum is None else p.maximum
        bounds = {("exclusiveMinimum" if p.exclusive_minimum else "minimum"): lo,
                  ("exclusiveMaximum" if p.exclusive_maximum else "maximum"): hi}
        if p.type == "gain":
            return {"oneOf": [{"type": "number", **bounds},
                              self.ref("GainName", lambda: {"type": "string", "enum": list(gains.GAIN_NAMES)})]}
        return {"type": [p.type, "null"] if nullable else p.type, **bounds}

    # ------------------------------------------------------------------ layers
    def layer_type(self) -> Schema:
        return {"type": "string", "enum": list(layers.NAMES)}

    def layer(self) -> Schema:
        """Any layer: one component per ``LayerType.component``, told apart by ``type``."""
        mapping = {name: self.layer_component(name)["$ref"] for name in layers.NAMES}
        return {"oneOf": [{"$ref": r} for r in dict.fromkeys(mapping.values())],
                "discriminator": {"propertyName": "type", "mapping": mapping}}

    def layer_component(self, type_name: str) -> Schema:
        kind = layers.REGISTRY[type_name]
        sharing = [t for t in layers.REGISTRY.values() if t.component == kind.component]
        return self.ref(kind.component, lambda: self.layer_schema(sharing), kind.component)

    def layer_schema(self, sharing: list[LayerType]) -> Schema:
        """The layer types that share a component: the fields every layer has, then their own; the first
        type's ``example``."""
        kind = sharing[0]
        for other in sharing[1:]:
            if (other.fields, other.rules, other.has_bias, other.summary) != (kind.fields, kind.rules, kind.has_bias,
                                                                               kind.summary):
                raise ValueError(f"{kind.name} and {other.name} share {kind.component} but differ")
        common = self.common_fields(kind, [t.name for t in sharing])
        rules = "; ".join(rule.doc for rule in kind.rules)
        description = kind.summary + (f" Checked by the service (422 naming the field): {rules}." if rules else "")
        return {"description": description, **self.object(kind.fields, first=common, required=("type",)),
                **({"example": {"type": kind.name, **kind.example}} if kind.example else {})}

    def common_fields(self, kind: LayerType, names: list[str]) -> dict[str, Schema]:
        """``core.layers.COMMON_FIELDS``, as ``service.document.schemas.LayerBase`` validates them."""
        schemas = {
            "type": {"type": "string", "enum": names},
            "name": self.kind(kinds.Text(1, kinds.NAME_MAX, kinds.NAME_PATTERN, kinds.NAME_RULE, ref="LayerName")),
            "activation": self.kind(kinds.ActivationRef()),
            "scheme": self.scheme_spec(),
            # a type without a bias tensor takes only `false` (a scheme there is the engine's 422)
            "bias": (self.ref("LayerBias", lambda: self.kind_schema(kinds.SchemeRef(allow_false=True)))
                     if kind.has_bias else {"description": "This layer type has no bias: only `false` is accepted.",
                                            **FALSE}),
            "role": {"description": "What the layer does in its model, for the recipes (`core.roles`): "
                                    + "; ".join(f"`{r}`: {roles.ROLES[r].doc}" for r in roles.for_type(kind.name, kind.norm)),
                     "type": "string", "enum": list(roles.for_type(kind.name, kind.norm))},
        }
        if tuple(schemas) != layers.COMMON_FIELDS:
            raise ValueError(f"the common layer fields are {layers.COMMON_FIELDS}, not {tuple(schemas)}")
        return schemas

    # ------------------------------------------------------------------ documents
    def architecture(self, layer: Schema, description: str, *, hf_config: bool = True) -> Schema:
        """``service.document.schemas.ArchitectureSchema``: 1..MAX_LAYERS_HARD layers, or (not for
        /v1/diagnose) a Hugging Face config."""
        layers_property = {"description": description, "type": "array", "minItems": 1,
                           "maxItems": doc.MAX_LAYERS_HARD, "items": layer}
        if not hf_config:
            return {"type": "object", "required": ["layers"], "additionalProperties": False,
                    "properties": {"layers": layers_property}}
        return {"type": "object", "additionalProperties": False,
                "oneOf": [{"required": ["layers"]}, {"required": ["hf_config"]}],
                "properties": {"layers": layers_property, "hf_config": self.ref("HFConfig", self.hf_config)}}

    def hf_config(self) -> Schema:
        """``service.document.hf``: a config.json object of one of the families (``core.hf``)."""
        return {"oneOf": [self.ref(_hf_component(name), lambda f=f: self.hf_family(f), f)
                          for name, f in hf.FAMILIES.items()],
                "discriminator": {"propertyName": "model_type",
                                  "mapping": {name: ref(_hf_component(name))["$ref"] for name in hf.FAMILIES}}}

    def hf_family(self, f: hf.Family) -> Schema:
        """One family's config: the keys it reads (the others are kept, never read: allowed)."""
        declared = self.object(f.fields)
        props = {"model_type": {"type": "string", "enum": [f.model_type]},
                 "architectures": {"description": f"architectures[0] picks the head (default {f.base})",
                                   "type": "array", "minItems": 1,
                                   "prefixItems": [{"type": "string", "enum": list(f.heads)}],
                                   "items": {"type": "string"}},
                 **declared["properties"]}
        out = {"type": "object", "required": ["model_type", *declared.get("required", [])], "properties": props}
        if f.aliases:
            out["description"] = "Also accepted: " + ", ".join(f"`{a}` for `{k}`" for a, k in f.aliases.items()) + "."
        return out

    def request_document(self, added: tuple[kinds.Field, ...], layers_doc: str) -> Schema:
        """The request document (``core.document.FIELDS``) and the fields a request adds (``format``, the
        output options)."""
        arch = self.architecture(self.ref("Layer", self.layer), layers_doc)
        return self.object((*doc.FIELDS, *added), first={"architecture": arch}, required=("architecture",))

    def diagnose_request(self, layers_doc: str) -> Schema:
        """The diagnose document: the request document's fields with ``core.diagnose.FIELDS`` (which
        replace ``tensors`` and add the rest); its layers: the types that run forward."""
        return self.runnable_document((*doc.FIELDS, *diagnose.FIELDS), layers_doc)

    def calibrate_request(self, added: tuple[kinds.Field, ...], layers_doc: str) -> Schema:
        """The calibrate document: the weights request document (``added``: ``format``, the output options)
        with ``core.calibrate.FIELDS`` (``scheme`` defaulting to orthogonal, no ``tensors``, ``calibration``);
        its layers: the types that run forward."""
        return self.runnable_document((*doc.FIELDS, *added, *calibrate.FIELDS), layers_doc)

    def runnable_document(self, declared: tuple[kinds.Field, ...], layers_doc: str) -> Schema:
        """A document of ``declared`` fields whose architecture holds only layers that run forward."""
        runnable = [self.layer_component(name) for name in diagnose.RUNNABLE]
        arch = self.architecture({"oneOf": list({r["$ref"]: r for r in runnable}.values())}, layers_doc,
                                 hf_config=False)
        return self.object(declared, first={"architecture": arch}, required=("architecture",))


def _hf_component(model_type: str) -> str:
    return "HFConfig_" + model_type
