"""openapi.yaml: a valid OpenAPI 3.1 document whose enums, layer and scheme schemas equal the
engine's registry, whose examples validate, and which describes every route of the app. It is
generated (service/openapi; tests/openapi checks that the committed file is fresh): these tests
check what the generator makes of the declarations, against the registries and the running service."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.config import load_config
from service.core.activations import NAMES as ACTIVATIONS
from service.core.distributions import WHOLE_MAX_ELEMENTS
from service.core.fields import MISSING
from service.core.gains import GAIN_NAMES
from service.core.layers import COMMON_FIELDS, REGISTRY
from service.core.scheme_entry import MAX_MAGNITUDE
from service.core.schemes import ALL_NAMES, SCHEMES
from service.output.formats import FORMATS
from service.version import ENGINE_VERSION

from .helpers import MIXED, MLP, small

BASE = "urn:weightinit:openapi"


@pytest.fixture(scope="module")
def schemas(spec_dict):
    return spec_dict["components"]["schemas"]


@pytest.fixture(scope="module")
def validator_for(spec_dict):
    registry = Registry().with_resource(BASE, Resource.from_contents(spec_dict, default_specification=DRAFT202012))

    def make(name: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{BASE}#/components/schemas/{name}"}, registry=registry)

    return make


def test_spec_is_valid_openapi_31(spec_dict):
    assert spec_dict["openapi"].startswith("3.1.")
    validate_spec(spec_dict)


def test_scheme_name_enum_equals_the_registry(schemas, spec_dict):
    assert schemas["SchemeName"]["enum"] == list(ALL_NAMES)
    mapping = schemas["SchemeObject"]["discriminator"]["mapping"]
    assert set(mapping) == set(ALL_NAMES)
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["SchemeObject"]["oneOf"]} == {f"Scheme_{n}" for n in SCHEMES}


@pytest.mark.parametrize("name", list(SCHEMES))
def test_each_scheme_object_has_the_registry_parameters(schemas, name):
    scheme = SCHEMES[name]
    obj = schemas[f"Scheme_{name}"]
    assert obj["additionalProperties"] is False
    assert obj["properties"]["name"]["enum"] == [name, *scheme.aliases]
    assert set(obj["properties"]) - {"name"} == {p.name for p in scheme.params}
    assert set(obj["required"]) == {"name"} | {p.name for p in scheme.params if p.required}
    for p in scheme.params:
        prop = obj["properties"][p.name]
        if not p.required:
            assert prop["default"] == p.default, p.name
        if p.type == "gain":
            number = prop["oneOf"][0]
            assert prop["oneOf"][1] == {"$ref": "#/components/schemas/GainName"}
        else:
            number = prop
        if p.type in ("number", "integer", "gain"):
            lo = -MAX_MAGNITUDE if p.minimum is None else p.minimum
            hi = MAX_MAGNITUDE if p.maximum is None else p.maximum
            assert number[("exclusiveMinimum" if p.exclusive_minimum else "minimum")] == lo, p.name
            assert number[("exclusiveMaximum" if p.exclusive_maximum else "maximum")] == hi, p.name
        if p.type == "string":  # a null default (deepnorm's part) is a value too
            assert prop["enum"] == [*p.choices, *([None] if p.default is None else [])]


def test_layer_type_enum_and_layer_schemas_equal_the_registry(schemas):
    assert schemas["LayerType"]["enum"] == list(REGISTRY)
    mapping = schemas["Layer"]["discriminator"]["mapping"]
    assert list(mapping) and set(mapping) == set(REGISTRY)
    covered = []
    for ref in schemas["Layer"]["oneOf"]:
        layer = schemas[ref["$ref"].rsplit("/", 1)[1]]
        types = layer["properties"]["type"]["enum"]
        covered += types
        for t in types:
            assert mapping[t] == ref["$ref"]
            assert set(layer["properties"]) == set(COMMON_FIELDS) | {f.name for f in REGISTRY[t].fields}, t
        assert layer["additionalProperties"] is False
    assert sorted(covered) == sorted(REGISTRY)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_layer_component_declares_its_type_fields(schemas, validator_for, name):
    """The type's fields after the common ones, in declaration order, required and defaults as declared;
    ``bias`` only ``false`` for a type without one; its summary and cross-field rules in the description."""
    kind = REGISTRY[name]
    layer = schemas[schemas["Layer"]["discriminator"]["mapping"][name].rsplit("/", 1)[1]]
    assert name in layer["properties"]["type"]["enum"]
    assert list(layer["properties"]) == [*COMMON_FIELDS, *(f.name for f in kind.fields)]
    assert layer["required"] == ["type", *(f.name for f in kind.fields if f.required)]
    for f in kind.fields:
        assert layer["properties"][f.name].get("default", MISSING) == f.default, f.name
    bias = layer["properties"]["bias"]
    assert bias == ({"$ref": "#/components/schemas/LayerBias"} if kind.has_bias
                    else {"description": bias["description"], "type": "boolean", "const": False})
    assert layer["description"].startswith(kind.summary)
    assert all(rule.doc in layer["description"] for rule in kind.rules)
    assert validator_for("Layer").is_valid({"type": name, **kind.example})
    assert layer["example"]["type"] in layer["properties"]["type"]["enum"]


def test_the_version_is_the_engine_version(spec_dict):
    assert spec_dict["info"]["version"] == ENGINE_VERSION


def test_other_enums_equal_the_engine(schemas):
    assert schemas["ActivationName"]["enum"] == list(ACTIVATIONS)
    assert schemas["GainName"]["enum"] == list(GAIN_NAMES)
    assert schemas["Format"]["enum"] == list(FORMATS)
    limits = set(schemas["Problem"]["properties"]["limit"]["enum"])
    assert limits == set(load_config().limits()) | {"whole_matrix_elements", "max_plan_elements", "max_pattern_work",
                                                    "max_hf_header_bytes"}


def test_media_types_of_weights_equal_the_encoders(spec_dict):
    content = spec_dict["paths"]["/v1/weights"]["post"]["responses"]["200"]["content"]
    assert {f.media_type for f in FORMATS.values()} | {"application/octet-stream"} == set(content)


def test_documented_default_limits_match_the_configuration(spec_dict):
    text = spec_dict["info"]["description"].replace("\n", " ")
    cfg = load_config(environ={})
    assert f"{cfg.max_json_elements:,} values per JSON response" in text
    assert f"{cfg.max_binary_elements:,} values per binary response" in text
    assert f"{cfg.max_layers} layers" in text and f"{cfg.max_tensors} tensors" in text
    assert cfg.max_body_bytes == 1 << 20 and "1 MiB" in text
    assert f"{WHOLE_MAX_ELEMENTS:,} elements" in text


def test_every_app_route_is_documented(app, spec_dict):
    documented = {(path, m.upper()) for path, item in spec_dict["paths"].items() for m in item}
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<", "{").replace(">", "}")
        if path.startswith("/docs/"):
            continue  # the Swagger UI assets under /docs
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


def test_every_operation_documents_its_errors(spec_dict):
    ops = {(p, m): op for p, item in spec_dict["paths"].items() for m, op in item.items()}
    for key in (("/v1/weights", "post"), ("/v1/plan", "post")):
        assert {"200", "304", "400", "406", "413", "415", "422", "500"} <= set(ops[key]["responses"]), key
    assert "404" in ops[("/v1/schemes/{name}", "get")]["responses"]
    assert "MethodNotAllowed" in spec_dict["components"]["responses"]


def _examples(node, where=""):
    """(schema, example, location) for every example next to a schema in the document."""
    if isinstance(node, dict):
        if "schema" in node and ("example" in node or "examples" in node):
            if "example" in node:
                yield node["schema"], node["example"], where
            for name, ex in node.get("examples", {}).items():
                yield node["schema"], ex, f"{where}/examples/{name}"
        for k, v in node.items():
            yield from _examples(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _examples(v, f"{where}/{i}")


def test_examples_validate_against_their_schemas(spec_dict, validator_for):
    registry = Registry().with_resource(BASE, Resource.from_contents(spec_dict, default_specification=DRAFT202012))
    examples = spec_dict["components"]["examples"]
    count = 0
    for schema, example, where in _examples(spec_dict["paths"]):
        if "$ref" in example and example["$ref"].startswith("#/components/examples/"):
            example = examples[example["$ref"].rsplit("/", 1)[1]]
        value = example["value"] if isinstance(example, dict) and "value" in example and "summary" in example else example
        schema = {"$ref": f"{BASE}{schema['$ref']}"} if "$ref" in schema else schema
        errors = list(Draft202012Validator(schema, registry=registry).iter_errors(value))
        assert not errors, (where, [e.message[:200] for e in errors])
        count += 1
    assert count >= 9
    # component-level examples
    for name in ("RequestDocument",):
        assert validator_for(name).is_valid(spec_dict["components"]["schemas"][name]["example"])


@pytest.mark.parametrize("doc", [MLP, MIXED, small(), small(bias=False), small(bias=None, tensors=None),
                                 small(scheme={"name": "variance_scaling", "scale": 2, "mode": "fan_out",
                                               "distribution": "uniform", "gain": "relu"}),
                                 small(format="npz", dtype="bfloat16", layout="keras", rng="weightinit"),
                                 {"architecture": {"layers": [{"type": "embedding", "num_embeddings": 4,
                                                               "embedding_dim": 2, "bias": False}]}}])
def test_request_schema_accepts_valid_documents(validator_for, client, doc):
    assert client.post("/v1/plan", json=doc).status_code == 200
    errors = [e.message for e in validator_for("RequestDocument").iter_errors(doc)]
    assert not errors


@pytest.mark.parametrize("doc", [small(seed=-1), small(seed=2 ** 63), small(colour=1), small(scheme="xavier"),
                                 small(scheme={"name": "he_normal", "std": 1}), small(dtype="int8"), small(bias=True),
                                 {"architecture": {"layers": [{"type": "dense", "in_features": 2}]}},
                                 {"architecture": {"layers": [{"type": "conv2d", "in_channels": 2, "out_channels": 2,
                                                               "kernel_size": [3]}]}},
                                 {"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2,
                                                               "kernel_size": 3}]}},
                                 {"architecture": {"layers": [{"type": "embedding", "num_embeddings": 4,
                                                               "embedding_dim": 2, "bias": "zeros"}]}},
                                 {"architecture": {"layers": [{"type": "tensor", "shape": [2, 2], "bias": "zeros"}]}}])
def test_request_schema_rejects_what_the_service_rejects(validator_for, client, doc):
    assert client.post("/v1/plan", json=doc).status_code == 422
    assert not validator_for("RequestDocument").is_valid(doc)


def test_normalized_request_echo_is_a_valid_request_document(validator_for, client):
    body = client.post("/v1/plan", json=MIXED).get_json()
    assert validator_for("RequestDocument").is_valid(body["request"])
    assert validator_for("Report").is_valid(body)


def test_the_response_checker_can_fail(app, check_openapi):
    """Guard: the openapi-core check used across these tests does reject a non-conforming response."""
    from openapi_core.exceptions import OpenAPIError

    c = app.test_client()
    good = c.get("/healthz")
    check_openapi({"path": "/healthz", "method": "GET"}, good)
    bad_body = c.get("/healthz")
    bad_body.set_data(json.dumps({"status": "down"}))
    with pytest.raises(OpenAPIError):
        check_openapi({"path": "/healthz", "method": "GET"}, bad_body)
    no_header = c.get("/healthz")
    del no_header.headers["X-Request-ID"]
    with pytest.raises(OpenAPIError):
        check_openapi({"path": "/healthz", "method": "GET"}, no_header)
    wrong_status = c.get("/healthz")
    wrong_status.status_code = 418
    with pytest.raises(OpenAPIError):
        check_openapi({"path": "/healthz", "method": "GET"}, wrong_status)
