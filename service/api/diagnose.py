"""``POST /v1/diagnose`` (signal-propagation diagnostics) and the explorer page at ``/``.

``/v1/diagnose`` takes the request document restricted to layers that run forward (dense,
conv1d/conv2d with stride 1 and 'same' padding) plus ``schemes``, ``batch`` and
``spatial_size``; the engine (``service.core.diagnose``) draws each scheme's weights, runs a
seeded probe batch forward and a seeded output gradient backward, and returns per-layer
statistics and a verdict per scheme. The order of checks, each before any array is allocated::

    415 Content-Type  ->  413 body size  ->  400 JSON  ->  413 max_layers  ->  422 marshmallow
    ->  406 Accept  ->  422 engine (SpecError)  ->  413 diagnose_max_batch / _cost / _bytes
    ->  304 If-None-Match  ->  200 (run)

The response is a pure function of the normalized request and the engine (and diagnostics)
version, so it carries a strong ETag and immutable caching headers, like ``/v1/plan``.

The explorer is a static page (``service/static/explorer/``) whose scripts ship in the package:
no CDN, works offline. Its HTML goes out with a Content-Security-Policy that allows scripts,
styles and requests from this origin only (no inline script, no eval).
"""

from __future__ import annotations

import hashlib
from importlib import resources

from flask import Blueprint, Response, abort, request

from .. import document, limits
from ..core import diagnose as dg
from .http import JSON, SEED_HEADER, config, immutable_headers, json_response, matches_if_none_match, not_modified, \
    read_json_body, require_accept

bp = Blueprint("diagnose", __name__)

#: The explorer's files, by name -> media type (nothing else under static/ is served).
EXPLORER_FILES = {
    "explorer.js": "text/javascript",
    "plots.js": "text/javascript",
    "explorer.css": "text/css",
}
EXPLORER_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@bp.post("/v1/diagnose")
def diagnose_view():
    cfg = config()
    doc = read_json_body()
    limits.check_document(doc, cfg)
    diagnose_request = document.load_diagnose_request(doc)
    require_accept(JSON)
    probe = dg.build_probe(diagnose_request)
    cost = dg.estimate_cost(probe)
    dg.check_limits(cost, cfg.diagnose_limits())
    headers = {**immutable_headers(f'"{dg.fingerprint(probe)}-diagnose"'), SEED_HEADER: str(probe.seed)}
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    return json_response(dg.run(probe, cost), headers=headers)


def _explorer_file(name: str) -> bytes:
    return (resources.files("service") / "static" / "explorer" / name).read_bytes()


def _revalidated(body: bytes, mimetype: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.set_etag(hashlib.sha256(body).hexdigest()[:32])
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = EXPLORER_CSP
    return resp.make_conditional(request)


@bp.get("/")
def explorer_page():
    require_accept("text/html")
    return _revalidated(_explorer_file("index.html"), "text/html")


@bp.get("/explorer/<name>")
def explorer_asset(name: str):
    if name not in EXPLORER_FILES:
        abort(404)
    return _revalidated(_explorer_file(name), EXPLORER_FILES[name])
