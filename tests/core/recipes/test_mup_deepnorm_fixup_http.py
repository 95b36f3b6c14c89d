"""The mup, deepnorm, fixup, t_fixup and skipinit recipes over HTTP: bad parameters are 422 problems naming
the field and the bound, and GET /v1/schemes describes each with its formula and paper."""

from __future__ import annotations

import json

import pytest

from service import create_app
from service.core.recipes import REGISTRY

NAMES = ("mup", "deepnorm", "fixup", "t_fixup", "skipinit")
BLOCK = [{"type": "dense", "name": "up", "in_features": 8, "out_features": 16, "role": "mlp_in"},
         {"type": "dense", "name": "down", "in_features": 16, "out_features": 8, "role": "mlp_out"}]


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


def doc(scheme, layers=BLOCK) -> dict:
    return {"architecture": {"layers": layers}, "scheme": scheme}


@pytest.mark.parametrize("body,field,words", [
    (doc({"name": "mup", "base_width": 0, "width": 16}), "scheme.base_width", "must be >= 1"),
    (doc({"name": "mup", "width": 16}), "scheme.base_width", "requires 'base_width'"),
    (doc({"name": "mup", "base_width": 8}), "scheme.width", "give the model's width"),
    (doc({"name": "mup", "base_width": 8, "width": 16, "init": "orthogonal"}), "scheme.init", "must be one of"),
    (doc({"name": "deepnorm", "convention": "fairseq"}), "scheme.convention", "must be one of paper, torchscale"),
    (doc({"name": "deepnorm", "decoder_layers": 0}), "scheme.decoder_layers", "must be >= 1"),
    (doc({"name": "deepnorm", "model": "encoder_decoder", "encoder_layers": 2, "decoder_layers": 2}), "scheme.part",
     "needs part"),
    (doc("deepnorm", [{**BLOCK[0], "scheme": {"name": "deepnorm", "model": "encoder_decoder", "decoder_layers": 2,
                                              "part": "decoder"}}]),
     "architecture.layers.0.scheme.encoder_layers", "needs encoder_layers"),
    (doc({"name": "fixup", "m": 1}), "scheme.m", "must be >= 2"),
    (doc({"name": "fixup", "L": 2 ** 21}), "scheme.L", "must be <= 1048576"),
    (doc({"name": "t_fixup", "model": "decoder", "decoder_layers": 1.5}), "scheme.decoder_layers", "must be an integer"),
    (doc({"name": "skipinit", "base": "zeros"}), "scheme.base", "must be one of he_normal"),
    (doc("fixup", [{"type": "dense", "in_features": 4, "out_features": 4}]), "architecture.layers.0.role",
     "initializes by role"),
])
def test_bad_parameters_are_422_naming_the_field(client, body, field, words):
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)[:300]
    errors = json.loads(r.get_data())["errors"]
    assert field in errors and words in errors[field][0], errors


@pytest.mark.parametrize("name", NAMES)
def test_the_recipes_are_listed_with_formula_and_paper(client, name):
    schemes = {s["name"]: s for s in json.loads(client.get("/v1/schemes").get_data())["schemes"]}
    s = schemes[name]
    assert s["family"] == "recipe" and s["formula"] and s["latex"] and s["paper"] == REGISTRY[name].scheme.paper
    assert REGISTRY[name].reference


@pytest.mark.parametrize("scheme", [
    {"name": "mup", "base_width": 8, "width": 16}, {"name": "deepnorm", "decoder_layers": 4}, "fixup",
    {"name": "t_fixup", "model": "decoder", "decoder_layers": 4},
    "skipinit"])
def test_every_tensor_reports_the_recipe(client, scheme):
    r = client.post("/v1/plan", json=doc(scheme))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    name = scheme if isinstance(scheme, str) else scheme["name"]
    for t in json.loads(r.get_data())["tensors"]:
        assert t["scheme"]["chosen_by"] == name and t["scheme"]["reason"].startswith(name), t
