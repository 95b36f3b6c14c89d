"""``GET /healthz``, ``GET /openapi.yaml`` (+ ``/openapi.json``), ``GET /docs`` and ``GET /metrics``.

The spec is the repository's top-level ``openapi.yaml``, shipped inside the package as
``service/openapi.yaml`` (a symlink in the repository; a regular file in wheels and installed
copies), read with ``importlib.resources`` so it is found wherever the package runs from.

``/docs`` is Swagger UI 5 (OpenAPI 3.1 support) from the ``flask-swagger-ui`` package's
bundled static files, served by this app under ``/docs/``: no CDN, works offline. Its page
loads ``/openapi.json``; a strict Content-Security-Policy allows scripts from this origin only.
``static/docs/init.js`` sets Swagger UI up so that no answer can lock up the page (large answers
are shown cut, large texts are not highlighted).

``/metrics`` (its own blueprint: registered only when ``WEIGHTINIT_METRICS`` is on) answers
Prometheus's text format, ``service.api.metrics`` says what is counted.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from importlib import resources

import numpy as np
import orjson
import yaml
from flask import Blueprint, Response, abort, request, send_from_directory

from ..version import ENGINE_VERSION
from . import metrics
from .http import JSON, json_response, require_accept

bp = Blueprint("meta", __name__)
metrics_bp = Blueprint("metrics", __name__)

YAML = "application/yaml"
#: The Swagger UI files /docs/ serves (the rest of the package is not exposed).
DOCS_FILES = ("swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
              "favicon-32x32.png", "favicon-16x16.png")
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@lru_cache(maxsize=1)
def spec_bytes() -> bytes:
    return (resources.files("service") / "openapi.yaml").read_bytes()


@lru_cache(maxsize=1)
def spec_json_bytes() -> bytes:
    return orjson.dumps(yaml.safe_load(spec_bytes()))


@lru_cache(maxsize=1)
def _docs_init_bytes() -> bytes:
    return (resources.files("service") / "static" / "docs" / "init.js").read_bytes()


@lru_cache(maxsize=1)
def swagger_ui_dir() -> str:
    import flask_swagger_ui

    return os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")


def _revalidated(body: bytes, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])
    resp.headers["Cache-Control"] = "no-cache"
    return resp.make_conditional(request)


@bp.get("/healthz")
def healthz():
    require_accept(JSON)
    return json_response({"status": "ok", "version": ENGINE_VERSION, "numpy": np.__version__},
                         headers={"Cache-Control": "no-store"})


@metrics_bp.get("/metrics")
def metrics_text():
    require_accept("text/plain")
    resp = Response(metrics.exposition(), mimetype="text/plain")
    resp.headers["Content-Type"] = metrics.MEDIA_TYPE
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/openapi.yaml")
def openapi_yaml():
    require_accept(YAML)
    return _revalidated(spec_bytes(), YAML)


@bp.get("/openapi.json")
def openapi_json():
    require_accept(JSON)
    return _revalidated(spec_json_bytes(), JSON)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>weightinit API {version}</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="stylesheet" href="/docs/index.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""


def _docs_headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/docs")
@bp.get("/docs/")
def docs():
    return _docs_headers(Response(_PAGE.format(version=ENGINE_VERSION), mimetype="text/html"))


@bp.get("/docs/init.js")
def docs_init():
    return _docs_headers(Response(_docs_init_bytes(), mimetype="text/javascript"))


@bp.get("/docs/<name>")
def docs_asset(name: str):
    if name not in DOCS_FILES:
        abort(404)
    resp = send_from_directory(swagger_ui_dir(), name, max_age=86_400)
    return resp
