"""GET /v1/schemes and /v1/schemes/{name}: the registry, as the engine describes it."""

from __future__ import annotations

import pytest

from service.core.schemes import ALIASES, ALL_NAMES, SCHEMES

from .helpers import assert_problem


def test_list_is_the_registry(client, check_openapi):
    r = client.get("/v1/schemes")
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert [s["name"] for s in body["schemes"]] == list(SCHEMES)
    assert body["schemes"] == [s.describe() for s in SCHEMES.values()]
    assert body["aliases"] == ALIASES and body["names"] == list(ALL_NAMES)
    check_openapi({"path": "/v1/schemes", "method": "GET"}, r)


def test_entries_carry_formula_parameters_and_framework_names(client):
    schemes = {s["name"]: s for s in client.get("/v1/schemes").get_json()["schemes"]}
    he = schemes["he_normal"]
    assert he["aliases"] == ["kaiming_normal"]
    assert he["formula"] and he["latex"] and he["torch"] == "torch.nn.init.kaiming_normal_" and he["keras"].startswith("HeNormal")
    assert "relu" in he["recommended_activations"]
    params = {p["name"]: p for p in he["parameters"]}
    assert params["mode"]["default"] == "fan_in" and params["mode"]["choices"] == ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
    # a bound of 0 is still a bound (0.0 == False must not hide it)
    assert params["negative_slope"]["minimum"] == 0.0 and params["negative_slope"]["maximum"] == 1000.0
    assert params["gain"]["minimum"] == 0.0 and params["gain"]["exclusive_minimum"] is True
    assert schemes["sparse"]["parameters"][0] == {**schemes["sparse"]["parameters"][0], "required": True}
    for s in schemes.values():
        assert s["summary"] and s["formula"] and s["latex"]


@pytest.mark.parametrize("name, canonical", [("he_normal", "he_normal"), ("kaiming_normal", "he_normal"),
                                             ("glorot_uniform", "xavier_uniform"), ("auto", "auto")])
def test_one_scheme_by_name_or_alias(client, name, canonical, check_openapi):
    r = client.get(f"/v1/schemes/{name}")
    assert r.status_code == 200 and r.get_json() == SCHEMES[canonical].describe()
    check_openapi({"path": f"/v1/schemes/{name}", "method": "GET"}, r)


def test_unknown_scheme_is_404(client):
    p = assert_problem(client.get("/v1/schemes/xavier"), 404, "not-found")
    assert "xavier" in p["detail"]


@pytest.mark.parametrize("path", ["/v1/schemes", "/v1/schemes/kaiming_uniform"])
def test_etag_revalidation(client, path):
    r = client.get(path)
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "public, max-age=300"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200
