"""Fixtures for the HTTP API tests: the app, its test client, and an OpenAPI checker that
validates real exchanges against openapi.yaml with openapi-core (documents: ``helpers``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from service import create_app

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi.yaml"

@pytest.fixture(scope="session")
def app():
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spec_dict() -> dict:
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _latin1(body: bytes) -> str:
    """Binary bodies are opaque to the spec (type: string, format: binary)."""
    return body.decode("latin-1")


@pytest.fixture(scope="session")
def openapi(spec_dict):
    from openapi_core import Config, OpenAPI

    config = Config(extra_media_type_deserializers={
        "application/problem+json": json.loads,
        "application/yaml": yaml.safe_load,  # the spec itself: an object with openapi, info, paths
        "text/html": lambda b: b.decode("utf-8"),
        "application/x-npy": _latin1, "application/zip": _latin1,
        "application/vnd.safetensors": _latin1, "application/octet-stream": _latin1, "application/x-tar": _latin1,
    })
    return OpenAPI.from_dict(spec_dict, config=config)


@pytest.fixture
def check_openapi(app, openapi):
    """``check_openapi(request_kwargs, response)``: the request (for 2xx) and the response
    (status, media type, required headers, body) validate against openapi.yaml."""
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

    def check(kw: dict, response):
        with app.test_request_context(**kw) as ctx:
            req = WerkzeugOpenAPIRequest(ctx.request)
            if response.status_code < 400:
                openapi.validate_request(req)
            openapi.validate_response(req, WerkzeugOpenAPIResponse(response))

    return check
