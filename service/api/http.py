"""HTTP helpers the blueprints share: the configuration, reading a JSON body safely,
content negotiation, JSON responses, and the caching headers (ETag, 304).

Reading a body: the Content-Type must be ``application/json`` (or ``+json``; 415
otherwise), the body at most ``max_body_bytes`` (413, decided from Content-Length before
reading, and by werkzeug while reading a chunked body), and it is parsed by orjson: strict
RFC 8259 (no NaN/Infinity literals, no BOM, valid UTF-8), nesting deeper than 1024 levels
rejected by the parser itself, integers beyond 64 bits read as floats (so ``"seed": 2**64``
is a 422 naming ``seed``, never a slow big-int parse), numbers overflowing a double
rejected. Any of these is a 400; a ``RecursionError`` anywhere in parsing is one too. A body
that ends short of its Content-Length, or stops arriving for ``WEIGHTINIT_IO_TIMEOUT`` seconds
(the socket's SO_RCVTIMEO, gunicorn.conf.py), is a 408: a truncated body is never parsed.
"""

from __future__ import annotations

import orjson
from flask import Response, current_app, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import ClientDisconnected

from ..config import Config
from ..version import ENGINE_VERSION
from .cache import ResponseCache
from .errors import Problem, malformed_json, too_large

JSON = "application/json"
CONFIG_KEY = "weightinit.config"
CACHE_KEY = "weightinit.cache"
FASTPATH_KEY = "weightinit.fastpath"

#: The service's own response headers, named here only (openapi.yaml documents each; ``cors.EXPOSED``
#: lets web pages on allowed origins read every one of them).
VERSION_HEADER = "X-Weightinit-Version"
SEED_HEADER = "X-Weightinit-Seed"
SCHEME_HEADER = "X-Weightinit-Scheme"
#: On every 206: the largest part that carries ``Content-Digest`` (``WEIGHTINIT_DIGEST_MAX_BYTES``).
DIGEST_BOUND_HEADER = "X-Weightinit-Digest-Max-Bytes"
#: On every /v1/calibrate answer: each layer's factor and rescalings, in layer order, comma-separated.
CALIBRATION_FACTORS_HEADER = "X-Weightinit-Calibration-Factors"
CALIBRATION_ITERATIONS_HEADER = "X-Weightinit-Calibration-Iterations"
OWN_HEADERS = (VERSION_HEADER, SEED_HEADER, SCHEME_HEADER, DIGEST_BOUND_HEADER, CALIBRATION_FACTORS_HEADER,
               CALIBRATION_ITERATIONS_HEADER)


def config() -> Config:
    return current_app.extensions[CONFIG_KEY]


def response_cache() -> ResponseCache:
    """The application's cache of validated requests and small finished responses (``create_app``)."""
    return current_app.extensions[CACHE_KEY]


def read_json_body() -> object:
    """The request body as parsed JSON, or a 415 / 413 / 400 Problem."""
    return parse_json(read_body_bytes())


def read_body_bytes() -> bytes:
    """The raw request body after the Content-Type and size checks (415 / 413 / 400 on an empty body)."""
    cfg = config()
    mimetype = request.mimetype
    if not mimetype:
        raise Problem(415, "Unsupported Media Type", "the request body must be JSON: send Content-Type: application/json",
                      supported=[JSON])
    if mimetype != JSON and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise Problem(415, "Unsupported Media Type",
                      f"the request body must be JSON (Content-Type: application/json), not {mimetype}", supported=[JSON])
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise Problem(415, "Unsupported Media Type", f"JSON must be UTF-8, not {charset}", supported=[JSON])
    length = request.content_length
    if length is not None and length > cfg.max_body_bytes:
        raise too_large("max_body_bytes", length, cfg.max_body_bytes,
                        f"the request body has {length} bytes; at most max_body_bytes = {cfg.max_body_bytes} are allowed")
    # A chunked body (no Content-Length) is read through werkzeug's LimitedStream, capped at
    # MAX_CONTENT_LENGTH = max_body_bytes + 1: one byte more than allowed means too large.
    try:
        data = request.get_data(cache=False)
    except (ClientDisconnected, OSError):
        # werkzeug's ClientDisconnected: the body ended short of Content-Length, or no byte came for
        # io_timeout seconds (SO_RCVTIMEO, gunicorn.conf.py) and the read failed
        raise Problem(408, "Request Timeout", "the request body stopped arriving before its end (Content-Length); "
                                              "send it at once", kind="request-timeout") from None
    if len(data) > cfg.max_body_bytes:
        raise too_large("max_body_bytes", None, cfg.max_body_bytes,
                        f"the request body is larger than max_body_bytes = {cfg.max_body_bytes} bytes")
    if not data.strip():
        raise malformed_json("the request body is empty: send the request document as a JSON object")
    return data


def parse_json(data: bytes) -> object:
    """Strict JSON (orjson), or a 400 Problem."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise malformed_json(f"the request body is not valid JSON: {e}") from None
    except RecursionError:
        raise malformed_json("the request body is nested too deeply") from None


def accept() -> MIMEAccept | None:
    """The parsed Accept header, or None when the client sent none (or an empty one)."""
    a = request.accept_mimetypes
    return a if a else None


def require_accept(*media_types: str) -> str:
    """The media type to answer with among ``media_types`` (the first when anything goes); 406 otherwise."""
    a = accept()
    if a is None:
        return media_types[0]
    best = a.best_match(media_types)
    if best is None:
        raise not_acceptable(list(media_types))
    return best


def not_acceptable(acceptable: list[str], detail: str | None = None) -> Problem:
    return Problem(406, "Not Acceptable", detail or f"this endpoint can answer with {', '.join(acceptable)}; the Accept "
                                                    f"header ({request.headers.get('Accept')!r}) allows none of them",
                   acceptable=acceptable)


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    resp = Response(orjson.dumps(body), status=status, mimetype=JSON)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def immutable_headers(etag: str) -> dict:
    """Headers of a response that is a pure function of the normalized request and the engine."""
    return {"ETag": etag, "Cache-Control": f"public, max-age={config().cache_max_age}, immutable"}


def matches_if_none_match(etag: str) -> bool:
    """True when If-None-Match names ``etag`` (weak comparison, RFC 9110 13.1.2) or is ``*``."""
    inm = request.if_none_match
    return bool(inm) and inm.contains_weak(etag.strip('"'))


def not_modified(headers: dict) -> Response:
    resp = Response(status=304)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def common_headers(resp: Response, request_id: str) -> Response:
    resp.headers[VERSION_HEADER] = ENGINE_VERSION
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Request-ID"] = request_id
    return resp
