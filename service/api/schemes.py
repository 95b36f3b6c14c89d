"""``GET /v1/schemes`` and ``GET /v1/schemes/{name}``: the scheme registry.

Straight from ``service.core.schemes.SCHEMES`` (``Scheme.describe()``): name, aliases,
family, summary, formula (plain text and LaTeX), parameters with types, defaults and ranges,
recommended activations, the Keras and PyTorch names, the paper. The body is built once per
application (the registry is fixed for an engine version) and revalidated with its ETag.
"""

from __future__ import annotations

import hashlib

import orjson
from flask import Blueprint, Response, request

from ..core import schemes
from ..version import ENGINE_VERSION
from .errors import Problem
from .http import JSON, require_accept

bp = Blueprint("schemes", __name__)

#: Registry listings change only with a deployment: cache briefly, revalidate with the ETag.
CACHE_CONTROL = "public, max-age=300"


def _listing() -> dict:
    return {"engine_version": ENGINE_VERSION, "schemes": [s.describe() for s in schemes.SCHEMES.values()],
            "aliases": dict(sorted(schemes.ALIASES.items())), "names": list(schemes.ALL_NAMES)}


_BODIES: dict[str, bytes] = {}


def _body(key: str, build) -> bytes:
    if key not in _BODIES:
        _BODIES[key] = orjson.dumps(build())
    return _BODIES[key]


def _cached_json(body: bytes) -> Response:
    resp = Response(body, mimetype=JSON)
    resp.headers["Cache-Control"] = CACHE_CONTROL
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])
    return resp.make_conditional(request)


@bp.get("/v1/schemes")
def list_schemes():
    require_accept(JSON)
    return _cached_json(_body("", _listing))


@bp.get("/v1/schemes/<name>")
def get_scheme(name: str):
    require_accept(JSON)
    canonical = schemes.ALIASES.get(name, name)
    if canonical not in schemes.SCHEMES:
        raise Problem(404, "Not Found", f"no scheme named {name!r}; GET /v1/schemes lists them", kind="not-found")
    return _cached_json(_body(canonical, lambda: schemes.SCHEMES[canonical].describe()))
