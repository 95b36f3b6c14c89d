"""The schemas' lean load (service/document/strict.py): for a valid document it returns what
marshmallow's own load returns; an invalid one is answered by marshmallow's own load, every error
of it, whatever the lean path saw first."""

from __future__ import annotations

import json

import pytest

from service import document
from service.core import layers
from service.document import strict
from service.document.schemas import DiagnoseRequestSchema, WeightsRequestSchema
from tests.corpus.documents import DIAGNOSE, DOCUMENTS


def standard(data, schema):
    """marshmallow's own load, the lean path switched off."""
    strict._MODE.mode = "standard"
    try:
        return document.load(data, schema)
    finally:
        strict._MODE.mode = None


def outcome(load):
    try:
        return "loaded", load()
    except document.ValidationError as e:
        return "invalid", e.messages


VALID = {name: doc for name, doc in DOCUMENTS.items() if isinstance(doc, dict)}
EXAMPLES = {name: {"architecture": {"layers": [kind.example]}} for name, kind in layers.REGISTRY.items()}


@pytest.mark.parametrize("name", sorted({**VALID, **EXAMPLES}))
def test_lean_load_returns_what_marshmallow_returns(name):
    doc = {**VALID, **EXAMPLES}[name]
    for schema, data in ((WeightsRequestSchema, doc), (WeightsRequestSchema, {**doc, "format": "npz"})):
        assert outcome(lambda: document.load(json.loads(json.dumps(data)), schema)) == \
            outcome(lambda: standard(json.loads(json.dumps(data)), schema)), name
    assert strict._MODE.mode is None


@pytest.mark.parametrize("name", sorted(DIAGNOSE))
def test_lean_load_of_diagnose_documents(name):
    doc = DIAGNOSE[name]
    assert outcome(lambda: document.load(json.loads(json.dumps(doc)), DiagnoseRequestSchema)) == \
        outcome(lambda: standard(json.loads(json.dumps(doc)), DiagnoseRequestSchema))


def test_an_invalid_document_gets_every_error_from_marshmallow():
    # The lean path stops at the first error (layer 0); marshmallow's load reports all three.
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 0, "out_features": 4},
                                       {"type": "dense", "in_features": 4, "out_features": "4"}]},
           "seed": -1, "dtype": "float8"}
    with pytest.raises(document.ValidationError) as e:
        document.load(doc, WeightsRequestSchema)
    assert document.flatten_messages(e.value.messages) == {
        "architecture.layers.0.in_features": ["Must be greater than or equal to 1 and less than or equal to 2147483648."],
        "architecture.layers.1.out_features": ["Not a valid integer."],
        "seed": ["Must be greater than or equal to 0 and less than or equal to 9223372036854775807."],
        "dtype": ["Must be one of: float32, float64, float16, bfloat16."]}
    assert strict._MODE.mode is None  # and the next document takes the lean path again
    assert document.load_request({"architecture": {"layers": [{"type": "dense", "in_features": 2,
                                                               "out_features": 2}]}}).layers[0].params["in_features"] == 2
