"""``POST /v1/plan`` (theory, no values) and ``POST /v1/weights`` (theory + values).

Both take the request document (README, openapi.yaml ``RequestDocument``); ``format`` is
accepted by both so that the same document can be posted to each (``/v1/plan`` ignores it).

The order of checks, each before any array is allocated::

    415 Content-Type  ->  413 body size  ->  400 JSON  ->  413 max_layers  ->  422 marshmallow
    ->  406 Accept / format  ->  422 engine (SpecError)  ->  413 max_tensors, element limits
    ->  304 If-None-Match  ->  200 (generate)

Format negotiation (``/v1/weights``): the body's ``format`` wins; without it the ``Accept``
header picks (``*/*`` or none -> JSON). A body ``format`` whose media type the ``Accept``
header excludes (e.g. ``format: npz`` with ``Accept: application/json``) is a 406: the
server cannot send what the client says it accepts.
"""

from __future__ import annotations

import base64
import logging

from flask import Blueprint, Response, g, request

from .. import limits
from ..core import build_plan
from ..core.plan import Plan
from ..core.report import report
from ..encoders import FORMATS, MEDIA_TYPES, encode
from ..schemas import WeightsRequestSchema, load_request
from .http import (JSON, accept, config, immutable_headers, json_response, matches_if_none_match, not_acceptable,
                   not_modified, read_json_body, require_accept)

bp = Blueprint("weights", __name__)
log = logging.getLogger("weightinit")

#: Media type -> format, in the server's order of preference for ``Accept: */*``.
ACCEPTED = {
    "application/json": "json",
    "application/x-npy": "npy",
    "application/zip": "npz",
    "application/vnd.safetensors": "safetensors",
    "application/octet-stream": "safetensors",
}


def _load() -> tuple[dict, str | None]:
    """Parse and validate the posted document: (the document without ``format``, ``format``)."""
    cfg = config()
    doc = read_json_body()
    limits.check_document(doc, cfg)
    load_request(doc, WeightsRequestSchema)
    engine_doc = {k: v for k, v in doc.items() if k != "format"}
    return engine_doc, doc.get("format")


def _plan(engine_doc: dict) -> Plan:
    return build_plan(engine_doc, max_tensors=config().max_tensors)


def negotiate(body_format: str | None) -> tuple[str, str]:
    """(format, Content-Type) from the body's format and the Accept header; 406 on a mismatch."""
    a = accept()
    if body_format is not None:
        candidates = [m for m, f in ACCEPTED.items() if f == body_format]
        if a is None:
            return body_format, candidates[0]
        best = a.best_match(candidates)
        if best is None:
            raise not_acceptable(candidates, f"the body asks for format {body_format!r}, sent as "
                                             f"{' or '.join(candidates)}, which the Accept header "
                                             f"({request.headers.get('Accept')!r}) excludes; drop one of the two")
        return body_format, best
    if a is None:
        return "json", JSON
    best = a.best_match(list(ACCEPTED))
    if best is None:
        raise not_acceptable(list(ACCEPTED))
    return ACCEPTED[best], best


def artifact_headers(plan: Plan, fmt: str) -> dict:
    return {**immutable_headers(f'"{plan.fingerprint()}-{fmt}"'),
            "X-Weightinit-Seed": str(plan.seed),
            "X-Weightinit-Scheme": plan.document["scheme"]["name"],
            "Vary": "Accept"}


@bp.post("/v1/plan")
def plan_view():
    engine_doc, _ = _load()
    require_accept(JSON)
    plan = _plan(engine_doc)
    headers = {**immutable_headers(f'"{plan.fingerprint()}-plan"'), "X-Weightinit-Seed": str(plan.seed),
               "X-Weightinit-Scheme": plan.document["scheme"]["name"]}
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    return json_response(report(plan), headers=headers)


@bp.post("/v1/weights")
def weights_view():
    engine_doc, body_format = _load()
    fmt, media_type = negotiate(body_format)
    plan = _plan(engine_doc)
    limits.check_elements(plan, fmt, config())
    limits.check_torch_replay(plan, config())
    headers = artifact_headers(plan, fmt)
    if fmt != "json":
        artifact = encode(plan, fmt)  # lazy: draws nothing yet; raises for npy with several tensors
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    if fmt == "json":
        artifact = encode(plan, "json")
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(artifact.sha256)).decode()}:"
        body = b"".join(artifact.chunks())  # one bytes object already: the JSON artifact is built in memory
        resp = Response(body, status=200, mimetype=media_type)
    else:
        resp = Response(_stream(artifact, g.get("request_id")), status=200, mimetype=media_type,
                        direct_passthrough=True)
        resp.headers["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
        resp.headers["Accept-Ranges"] = "none"
    resp.headers["Content-Length"] = str(artifact.length)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def _stream(artifact, request_id):
    """The artifact's chunks as bytes (WSGI servers accept bytes only), one block at a time.

    Each chunk is copied out of the encoder's reused buffer (at most one block, 1 MiB for
    float32) and handed to the server, so memory stays bounded whatever the artifact's size.
    A failure mid-stream cannot become a problem response any more: it is logged with the
    request id, and the connection closes short of Content-Length, which clients detect."""
    try:
        for chunk in artifact.chunks():
            yield chunk if isinstance(chunk, bytes) else bytes(chunk)
    except Exception:  # not GeneratorExit: a client that hangs up is no error
        log.exception("artifact stream failed (request id %s)", request_id)
        raise


assert set(ACCEPTED.values()) == set(FORMATS) and all(ACCEPTED[MEDIA_TYPES[f]] == f for f in FORMATS)
