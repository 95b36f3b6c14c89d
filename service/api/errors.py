"""Every error as RFC 9457 ``application/problem+json``.

Body: ``type`` (a URN naming the problem kind, listed in openapi.yaml), ``title``,
``status``, ``detail``, ``instance`` (the request path), ``request_id``, plus:

- validation (400 malformed JSON is not one; 422): ``errors`` = {field path: [messages]};
- limits (413): ``limit`` (the configuration field, e.g. ``max_json_elements``),
  ``requested`` and ``allowed``;
- 406: ``acceptable`` (media types this endpoint can send); 415: ``supported``.

A handler is registered for every ``HTTPException`` (404, 405, werkzeug's 413, ...) and for
``Exception``: a bug answers a 500 whose body says nothing about the internals (the
traceback goes to the error log with the request id).
"""

from __future__ import annotations

import logging

import orjson
from flask import Flask, Response, current_app, g, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..core.errors import SpecError
from ..document import flatten_messages
from .metrics import count_limit

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("weightinit")

#: Problem ``type`` URNs by kind (documented in openapi.yaml's ProblemType enum).
TYPES = {
    "malformed-json": "urn:weightinit:problem:malformed-json",
    "invalid-document": "urn:weightinit:problem:invalid-document",
    "limit-exceeded": "urn:weightinit:problem:limit-exceeded",
    "not-acceptable": "urn:weightinit:problem:not-acceptable",
    "unsupported-media-type": "urn:weightinit:problem:unsupported-media-type",
    "not-found": "urn:weightinit:problem:not-found",
    "method-not-allowed": "urn:weightinit:problem:method-not-allowed",
    "bad-request": "urn:weightinit:problem:bad-request",
    "request-timeout": "urn:weightinit:problem:request-timeout",
    "range-not-satisfiable": "urn:weightinit:problem:range-not-satisfiable",
    "http-error": "urn:weightinit:problem:http-error",
    "internal": "urn:weightinit:problem:internal",
}
#: A 422 names at most this many fields: a 1 MiB body can hold tens of thousands of bad fields, and
#: naming each would make a 50 MB answer out of a 1 MB question. ``errors_omitted`` counts the rest.
MAX_FIELD_ERRORS = 50
#: ... and at most this many messages per field.
MAX_FIELD_MESSAGES = 5

_BY_STATUS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 406: "not-acceptable",
              408: "request-timeout", 413: "limit-exceeded", 415: "unsupported-media-type", 416: "range-not-satisfiable", 422: "invalid-document", 500: "internal"}


class Problem(Exception):
    """An error response: raise it anywhere in a view."""

    def __init__(self, status: int, title: str, detail: str, *, kind: str | None = None,
                 headers: dict | None = None, **extensions):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or _BY_STATUS.get(status, "http-error")
        self.headers = headers or {}
        self.extensions = extensions


def malformed_json(detail: str) -> Problem:
    return Problem(400, "Malformed JSON", detail, kind="malformed-json")


def invalid(errors: dict[str, list[str]], detail: str | None = None) -> Problem:
    if detail is None:
        field, msgs = next(iter(errors.items()))
        more = f" (and {len(errors) - 1} more field{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        detail = f"{field}: {msgs[0]}{more}"
    extensions = {}
    if len(errors) > MAX_FIELD_ERRORS or any(len(m) > MAX_FIELD_MESSAGES for m in errors.values()):
        kept = dict(list(errors.items())[:MAX_FIELD_ERRORS])
        extensions["errors_omitted"] = len(errors) - len(kept)
        errors = {k: m[:MAX_FIELD_MESSAGES] for k, m in kept.items()}
    return Problem(422, "Invalid request document", detail, kind="invalid-document", errors=errors, **extensions)


def from_spec_error(e: SpecError) -> Problem:
    """An engine error: a configured limit (413) or an invalid field (422)."""
    if e.limit:
        return too_large(e.limit, e.requested, e.allowed, e.message)
    return invalid({e.field or "_schema": [e.message]}, str(e))


def too_large(limit: str, requested, allowed, detail: str) -> Problem:
    return Problem(413, "Request exceeds a limit", detail, kind="limit-exceeded", limit=limit, requested=requested,
                   allowed=allowed)


def problem_response(p: Problem) -> Response:
    if p.status == 413:
        count_limit(request.environ, p.extensions["limit"])
    body = {"type": TYPES[p.kind], "title": p.title, "status": p.status, "detail": p.detail,
            "instance": request.path, "request_id": g.get("request_id")}
    body.update(p.extensions)
    resp = Response(orjson.dumps(body), status=p.status, mimetype=PROBLEM_MEDIA_TYPE)
    for k, v in p.headers.items():
        resp.headers[k] = v
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _http_exception(e: HTTPException) -> Response:
    status = e.code or 500
    if isinstance(e, RequestEntityTooLarge):
        # werkzeug's own guard (MAX_CONTENT_LENGTH), should a body be read past it.
        limit = current_app.extensions["weightinit.config"].max_body_bytes
        return problem_response(too_large("max_body_bytes", request.content_length, limit,
                                          f"the request body is larger than max_body_bytes = {limit} bytes"))
    extensions = {}
    headers = {}
    if status == 405 and getattr(e, "valid_methods", None):
        methods = sorted(set(e.valid_methods))
        headers["Allow"] = ", ".join(methods)
        extensions["allowed_methods"] = methods
    detail = e.description or e.name
    if status == 404:
        detail = f"no resource at {request.path}; GET /openapi.yaml lists the endpoints"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}; allowed: {headers.get('Allow', '')}"
    return problem_response(Problem(status, e.name, detail, headers=headers, **extensions))


def _exception(e: Exception) -> Response:
    log.exception("unhandled error (request id %s) on %s %s", g.get("request_id"), request.method, request.path,
                  extra={"request_id": g.get("request_id"), "method": request.method, "path": request.path,
                         "status": 500})
    return problem_response(Problem(500, "Internal Server Error",
                                    f"the server failed to answer this request; quote request id "
                                    f"{g.get('request_id')} when reporting it", kind="internal"))


def register(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(ValidationError, lambda e: problem_response(invalid(flatten_messages(e.messages))))
    app.register_error_handler(SpecError, lambda e: problem_response(from_spec_error(e)))
    app.register_error_handler(HTTPException, _http_exception)
    app.register_error_handler(Exception, _exception)
