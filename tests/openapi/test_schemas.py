"""The OpenAPI schema of every declared field accepts exactly what the boundary (marshmallow) accepts:
each field is tried on the same JSON values both ways. What JSON Schema cannot state (integral
floats such as 3.0 are integers to it; rules across fields; a scheme's low < high) is left out of the
values, and checked through the service in tests/api/test_openapi.py."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator
from marshmallow import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.core import activations, diagnose, layers
from service.core import document as doc
from service.core import fields as kinds
from service.document.fields import marshmallow_field
from service.document.schemas import FORMAT, LayerBase
from service.openapi import build
from service.openapi.schemas import Components

BASE = "urn:weightinit:openapi"

#: JSON values of every shape the documents take, on and around each bound.
VALUES = [
    None, True, False, 0, 1, -1, 2, 3, 8, 9, 128, 1024, 1025, 4096, 4097, 2 ** 31, 2 ** 31 + 1, 2 ** 63 - 1, 2 ** 63,
    0.5, -0.5, 0.01, 999.5, 1000, 1000.5, 1e300, "", "x", "5", "auto", "he_normal", "kaiming_normal", "xavier", "relu",
    "leaky_relu", "linear", "float32", "bfloat16", "int8", "torch", "keras", "weightinit", "json", "npz", "fc1",
    "fc.1", "fc..1", ".fc", "fc.", "a-b_c", "a b", "a" * 128, "a" * 129, "s" * 65,
    [], [1], [1, 2], [1, 2, 3], [1] * 8, [1] * 9, [0], [2 ** 31 + 1], [True], [1.5], ["fc1.*"], [""], ["x" * 256],
    ["x" * 257], ["fc"] * 1024, ["fc"] * 1025, [None], ["he_normal", {"name": "zeros"}], ["he_normal"] * 8,
    ["he_normal"] * 9, ["nope"], [1024, 1024], [1025], [1, 2, 3],
    {}, {"name": "relu"}, {"name": "leaky_relu", "negative_slope": 0.2}, {"name": "relu", "negative_slope": -1},
    {"name": "relu", "negative_slope": None}, {"name": "relu", "extra": 1}, {"name": "he_normal", "mode": "fan_out"},
    {"name": "kaiming_normal", "truncate": True, "negative_slope": 0.1}, {"name": "he_normal", "std": 1},
    {"name": "he_normal", "gain": "tanh"}, {"name": "he_normal", "gain": "swish"}, {"name": "he_normal", "gain": 0},
    {"name": "he_normal", "gain": 1e3}, {"name": "he_normal", "gain": None}, {"name": "he_normal", "mode": "fan"},
    {"name": "sparse"}, {"name": "sparse", "sparsity": 0.5}, {"name": "sparse", "sparsity": 1},
    {"name": "dirac", "groups": None}, {"name": "dirac", "groups": 2}, {"name": "dirac", "groups": 0},
    {"name": "normal", "std": 0}, {"name": "normal", "mean": -1e6, "std": 1e6}, {"name": "constant", "value": 1e6 + 1},
    {"name": "variance_scaling", "scale": 2, "mode": "fan_avg", "distribution": "normal", "truncate": True},
    {"name": "lstm_forget_bias"}, {"name": "zeros", "value": 0}, {"name": 3}, {"name": "auto"},
]


def declared() -> list[tuple[str, kinds.Field]]:
    """(where, field) for every declared field of every document."""
    out = [(f"request.{f.name}", f) for f in doc.FIELDS]
    out += [(f"diagnose.{f.name}", f) for f in diagnose.FIELDS]
    out += [(f"weights.{f.name}", f) for f in (FORMAT,)]
    out += [(f"activation.{f.name}", f) for f in activations.OBJECT_FIELDS]
    seen = set()
    for kind in layers.REGISTRY.values():
        for f in kind.fields:
            if f not in seen:
                seen.add(f)
                out.append((f"{kind.name}.{f.name}", f))
    return out


@pytest.fixture(scope="module")
def spec():
    return build()


def accepted_by_schema(spec: dict, schema: dict):
    """A predicate: ``schema`` (whose $refs point into ``spec``'s components) accepts the value."""
    probe = copy.deepcopy(spec)
    probe["components"]["schemas"]["__probe"] = schema
    registry = Registry().with_resource(BASE, Resource.from_contents(probe, default_specification=DRAFT202012))
    validator = Draft202012Validator({"$ref": f"{BASE}#/components/schemas/__probe"}, registry=registry)
    return validator.is_valid


def accepted_by_marshmallow(field):
    def ok(value) -> bool:
        try:
            field.deserialize(copy.deepcopy(value))
        except ValidationError:
            return False
        return True
    return ok


def disagreements(values, json_ok, marshmallow_ok) -> list:
    """(value, what the schema says, what marshmallow says) for each value they disagree on."""
    def says(ok: bool) -> str:
        return "accepts" if ok else "rejects"
    return [(v if not isinstance(v, (list, str)) or len(v) < 12 else f"{type(v).__name__} of {len(v)}",
             f"schema {says(json_ok(v))}", f"marshmallow {says(marshmallow_ok(v))}")
            for v in values if json_ok(v) != marshmallow_ok(v)]


@pytest.mark.parametrize("where, field", declared(), ids=[w for w, _ in declared()])
def test_a_declared_field_accepts_what_the_boundary_accepts(spec, where, field):
    schema = Components().field(field)
    json_ok = accepted_by_schema(spec, schema)
    values = VALUES + ([field.default] if field.default is not kinds.MISSING else [])
    assert not disagreements(values, json_ok, accepted_by_marshmallow(marshmallow_field(field)))
    if field.default is not kinds.MISSING:
        assert json_ok(field.default), "the documented default must be a valid value"


@pytest.mark.parametrize("name", ["name", "activation", "scheme", "bias"])
def test_the_fields_every_layer_has_accept_what_the_boundary_accepts(spec, name):
    """``type`` is checked before a layer's schema runs; ``bias`` on a type without one is the engine's 422
    (tests/api/test_openapi.py)."""
    dense = spec["components"]["schemas"]["DenseLayer"]["properties"]
    json_ok = accepted_by_schema(spec, dense[name])
    assert not disagreements(VALUES, json_ok, accepted_by_marshmallow(LayerBase._declared_fields[name]))


def test_the_layer_fields_are_the_common_fields():
    # role is common to every type too, but each type's schema declares it: its enum is the type's roles
    assert (*LayerBase._declared_fields, "role") == layers.COMMON_FIELDS
