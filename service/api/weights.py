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
import errno
import hashlib
import logging
import re

import orjson

from flask import Blueprint, Response, g, request

from .. import document, limits
from ..core import build_plan
from ..core.document import Request
from ..core.errors import SpecError
from ..core.linalg_identity import etag_value
from ..core.plan import Plan
from ..output import formats
from ..output.options import Options
from ..output.report import Report
from .cache import PLAN_BYTES_PER_TENSOR, Entry, ResponseCache
from .errors import Problem
from .http import (DIGEST_BOUND_HEADER, JSON, SCHEME_HEADER, SEED_HEADER, accept, config, immutable_headers,
                   json_response, matches_if_none_match, not_acceptable, not_modified, parse_json, read_body_bytes,
                   require_accept, response_cache)
from .metrics import START_RESPONSE_KEY, count_cache, count_sent, count_values, value_totals

bp = Blueprint("weights", __name__)
log = logging.getLogger("weightinit")


def _key(raw: bytes) -> bytes:
    """Cache key of this request: the path, the Accept header (it picks the format) and the raw body."""
    return ResponseCache.key(request.path, request.headers.get("Accept"), raw)


def _load(raw: bytes) -> tuple[Request, str | None, Options]:
    """Parse and validate the posted document, once: (the typed request, its ``format``, its output options)."""
    doc = parse_json(raw)
    limits.check_document(doc, config())
    return document.load_weights_request(doc)


def _plan(req: Request) -> Plan:
    return build_plan(req, max_tensors=config().max_tensors)


def negotiate(body_format: str | None) -> tuple[str, str]:
    """(format, Content-Type) from the body's format and the Accept header; 406 on a mismatch."""
    a = accept()
    if body_format is not None:
        candidates = [m for m, f in formats.ACCEPTED.items() if f == body_format]
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
    best = a.best_match(list(formats.ACCEPTED))
    if best is None:
        raise not_acceptable(list(formats.ACCEPTED))
    return formats.ACCEPTED[best], best


def artifact_headers(plan: Plan, fmt: str, options: Options) -> dict:
    return {**immutable_headers(f'"{etag_value(plan)}-{options.tag(fmt)}"'),
            SEED_HEADER: str(plan.seed),
            SCHEME_HEADER: plan.request.scheme["name"],
            "Vary": "Accept"}


@bp.post("/v1/plan")
def plan_view():
    raw = read_body_bytes()
    key = _key(raw)
    cache = response_cache()
    entry = cache.get(key)
    count_cache(request.environ, entry is not None)
    if entry is None:  # parse, validate, plan and report once per distinct body (and Accept)
        req, _, options = _load(raw)
        require_accept(JSON)
        plan = _plan(req)
        # The options change the totals (the sizes of safetensors and hf), so the ETag names them too.
        headers = {**immutable_headers(f'"{etag_value(plan)}-{options.tag("plan")}"'),
                   SEED_HEADER: str(plan.seed), SCHEME_HEADER: plan.request.scheme["name"]}
        entry = cache.put(key, Entry(headers, body=orjson.dumps(formats.document(Report(plan), options))))
    headers = dict(entry.headers)
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    if entry.body is None:  # too large to keep: rebuilt (rare: a plan of thousands of tensors)
        req, _, options = _load(raw)
        return json_response(formats.document(Report(_plan(req)), options), headers=headers)
    resp = Response(entry.body, status=200, mimetype=JSON)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def _weights_entry(raw: bytes) -> Entry:
    """The validated request: plan, report, format, media type and headers (cached per body and Accept)."""
    key = _key(raw)
    cache = response_cache()
    entry = cache.get(key)
    count_cache(request.environ, entry is not None)
    if entry is not None:
        return entry
    req, body_format, options = _load(raw)
    fmt, media_type = negotiate(body_format)
    plan = _plan(req)
    formats.get(fmt).check(plan)  # a format the plan cannot take (hf without hf_config): 422 before any limit
    # A Range request is held to max_binary_elements by the values its part carries, and (rng weightinit:
    # parts draw only what they overlap) to max_matrix_flops by the whole-matrix tensors its bytes overlap,
    # both checked in the view, so that a model larger than either limit can still be fetched in parts.
    partial = formats.get(fmt).ranges and "Range" in request.headers
    per_part = {"max_binary_elements"} | ({"max_matrix_flops"} if req.rng == "weightinit" else set())
    over = []
    for check in (lambda: limits.check_elements(plan, fmt, config()),
                  lambda: limits.check_matrix_work(limits.drawn_tensors(plan), config())):
        try:
            check()
        except SpecError as e:
            if not (partial and e.limit in per_part):
                raise
            over.append(e)
    limits.check_torch_replay(plan, config())
    report = Report(plan)
    entry = Entry(artifact_headers(plan, fmt, options), plan=plan, report=report, fmt=fmt, media_type=media_type,
                  options=options, over_limits=tuple(over),
                  values=value_totals((t, t.size) for t in plan.selected))
    if fmt != "json":
        # Lazy: draws nothing yet (raises for npy with several tensors). Stateless (chunks() starts
        # afresh each call), so one Artifact serves every request of this body, Range parts included.
        entry.artifact = formats.encode(report, fmt, options=options)
        entry.held = sum(len(seg) for seg in entry.artifact.segments or () if isinstance(seg, bytes))
    entry.held += PLAN_BYTES_PER_TENSOR * len(plan.tensors) + len(report.text if fmt in ("npz", "safetensors", "hf") else "")
    if req.rng != "weightinit":  # rng torch plans hold replay state: never shared
        return entry
    return cache.put(key, entry)


def _json_artifact(entry: Entry):
    """The JSON artifact, complete (its sha-256 known): ``(body bytes, sha-256 hex)`` for a small
    one, kept in the cache entry (the fast path answers repeats from it), else the Artifact, whose
    pieces are sent as they are (joining 10+ MB of text would copy it once more)."""
    if entry.json is not None:
        return entry.json
    artifact = formats.encode(entry.report, "json", options=entry.options)
    if artifact.length > 1 << 20:
        return artifact
    body = b"".join(artifact.chunks())  # one bytes object already for small documents
    if entry.plan.request.rng == "weightinit":
        response_cache().attach_json(entry, body, artifact.sha256)
    return body, artifact.sha256


def requested_range(length: int, etag: str) -> tuple[int, int] | None:
    """The byte range ``[start, stop)`` a ``Range: bytes=...`` header selects, or None for the whole.

    One range only (``a-b``, ``a-``, ``-n``). Ignored, so that the whole artifact is sent, as
    RFC 9110 allows: no Range, a malformed one, several ranges, or an ``If-Range`` that is not
    this response's (strong) ETag. A 416 when the range starts past the end (or ``-0``)."""
    header = request.headers.get("Range")
    if header is None:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    m = _RANGE.fullmatch(header)
    if m is None or not (m.group(1) or m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # invalid: ignored
        if start >= length:
            raise _unsatisfiable(length, f"the range starts at byte {start}; the artifact has {length} bytes")
        return start, min(int(last) + 1, length) if last else length
    suffix = int(last)
    if suffix == 0:
        raise _unsatisfiable(length, "a suffix range of 0 bytes selects nothing")
    return max(length - suffix, 0), length


_RANGE = re.compile(r"\s*bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})\s*")


def _unsatisfiable(length: int, detail: str) -> Problem:
    return Problem(416, "Range Not Satisfiable", detail, headers={"Content-Range": f"bytes */{length}"}, length=length)


@bp.post("/v1/weights")
def weights_view():
    entry = _weights_entry(read_body_bytes())
    plan, fmt, media_type = entry.plan, entry.fmt, entry.media_type
    headers = dict(entry.headers)
    for over in entry.over_limits:  # too much for one response: only a part that needs little enough
        artifact = entry.artifact
        span = requested_range(artifact.length, headers["ETag"])
        if span is None:
            raise over
        if over.limit == "max_binary_elements":
            carried = -(-(span[1] - span[0]) // min(t.dtype.itemsize for t in plan.selected))
            if carried > over.allowed:
                raise over
        else:
            limits.check_matrix_work(artifact.tensors_in(*span), config(), "this Range part")
    if matches_if_none_match(headers["ETag"]):
        return not_modified(headers)
    artifact = entry.artifact
    if fmt != "json" and artifact.ranges:
        headers["Accept-Ranges"] = "bytes"
        span = requested_range(artifact.length, headers["ETag"])
        if span is not None:
            return _partial(artifact, span, media_type, headers)
    count_values(request.environ, entry.values)  # a whole answer: every value of the selected tensors
    if fmt != "json":
        return binary_response(artifact, media_type, headers)
    built = _json_artifact(entry)
    if not isinstance(built, tuple):  # large: its pieces go out as they are, straight to the socket under gunicorn
        return json_artifact_response(built, media_type, headers)
    body, sha256 = built
    resp = Response(body, status=200, mimetype=media_type)
    headers["Repr-Digest"] = sha256_field(bytes.fromhex(sha256))
    resp.headers["Content-Length"] = str(len(body))
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def binary_response(artifact, media_type: str, headers: dict) -> Response:
    """200 with a whole binary artifact (``headers`` added): built in memory with its ``Repr-Digest`` when
    it is at most ``digest_max_bytes``, else streamed (also ``POST /v1/calibrate``'s)."""
    if artifact.length <= config().digest_max_bytes:
        # A small artifact is built in memory first (at most digest_max_bytes, one copy), so that its
        # sha-256 can go out before the body, in Repr-Digest; a client verifies the whole download.
        body = b"".join(bytes(chunk) for chunk in artifact.chunks())  # copies: chunks reuse their buffers
        if len(body) != artifact.length:
            raise RuntimeError(f"the {artifact.format} encoder produced {len(body)} bytes, announced {artifact.length}")
        headers["Repr-Digest"] = sha256_field(hashlib.sha256(body).digest())
        resp = Response(body, status=200, mimetype=media_type)
    else:
        resp = Response(_stream(artifact, g.get("request_id"), None, _direct_socket()), status=200,
                        mimetype=media_type, direct_passthrough=True)
    resp.headers["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
    resp.headers["Accept-Ranges"] = "none"
    resp.headers["Content-Length"] = str(artifact.length)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def json_artifact_response(artifact, media_type: str, headers: dict) -> Response:
    """200 with a JSON artifact (its sha-256 known): one body when small, else its pieces streamed."""
    if artifact.length <= 1 << 20:
        resp = Response(b"".join(artifact.chunks()), status=200, mimetype=media_type)
    else:
        resp = Response(_stream(artifact, g.get("request_id"), None, _direct_socket()), status=200,
                        mimetype=media_type, direct_passthrough=True)
    headers["Repr-Digest"] = sha256_field(bytes.fromhex(artifact.sha256))
    resp.headers["Content-Length"] = str(artifact.length)
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def _partial(artifact, span: tuple[int, int], media_type: str, headers: dict) -> Response:
    """206 Partial Content: bytes ``[start, stop)`` of the artifact, drawing only the blocks they need.

    A part of at most ``digest_max_bytes`` is built in memory first (bounded) so that
    ``Content-Digest`` (RFC 9530: the sha-256 of exactly this part's bytes) goes out before it:
    a client assembling parts verifies each one as it arrives, whatever the artifact's size. A
    larger part streams without it. Every 206 states the bound in ``X-Weightinit-Digest-Max-Bytes``
    so that a client can cut its parts to it. A small artifact (at most the bound) is built whole,
    as for a 200, so that its ``Repr-Digest`` (of the whole representation) goes out with every
    part too."""
    start, stop = span
    bound = config().digest_max_bytes
    if artifact.length <= bound:
        body = b"".join(bytes(chunk) for chunk in artifact.chunks())
        headers["Repr-Digest"] = sha256_field(hashlib.sha256(body).digest())
        part = memoryview(body)[start:stop]
    elif stop - start <= bound:
        part = _part_bytes(artifact, start, stop)
    else:
        part = None
    if part is not None:
        headers["Content-Digest"] = sha256_field(hashlib.sha256(part).digest())
    resp = Response(_stream(artifact, g.get("request_id"), span, _direct_socket(), built=part), status=206,
                    mimetype=media_type, direct_passthrough=True)
    resp.headers["Content-Disposition"] = f'attachment; filename="{artifact.filename}"'
    resp.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{artifact.length}"
    resp.headers["Content-Length"] = str(stop - start)
    resp.headers[DIGEST_BOUND_HEADER] = str(bound)
    for k, v in headers.items():
        resp.headers[k] = v
    count_values(request.environ, value_totals(artifact.elements_in(start, stop)))
    return resp


def _part_bytes(artifact, start: int, stop: int) -> bytearray:
    """Bytes ``[start, stop)`` of the artifact in one buffer (the pieces are views of reused buffers),
    sent as it is (``_stream``): one copy of the part in memory."""
    buf = bytearray(stop - start)
    pos = 0
    for piece in artifact.byte_range(start, stop):
        n = memoryview(piece).nbytes
        buf[pos:pos + n] = piece
        pos += n
    if pos != len(buf):
        raise RuntimeError(f"the {artifact.format} range [{start}, {stop}) produced {pos} bytes")
    return buf


def sha256_field(digest: bytes) -> str:
    """An RFC 9530 ``Repr-Digest`` / ``Content-Digest`` value: ``sha-256=:<base64>:``."""
    return f"sha-256=:{base64.b64encode(digest).decode()}:"


def _direct_socket():
    """The client's socket when the body may be written to it directly: under gunicorn, HTTP/1.x.

    gunicorn's ``write`` takes ``bytes`` only, so every block (a view of a reused buffer) would
    be copied once more on its way out; writing the views to the socket saves that copy (about
    a tenth of a large download's server CPU). gunicorn puts the socket in the environ as
    ``gunicorn.socket`` and, since the response has a Content-Length, frames nothing itself: it
    sends the status line and headers at the first (empty) chunk and keeps the connection alive
    afterwards. Elsewhere (other servers, HTTP/2, tests) the body goes through the server."""
    env = request.environ
    sock = env.get("gunicorn.socket")
    if (sock is None or not env.get("SERVER_SOFTWARE", "").startswith("gunicorn")
            or env.get("SERVER_PROTOCOL") not in ("HTTP/1.1", "HTTP/1.0") or env.get("HTTP_VERSION") == "2"):
        return None
    return _Direct(sock, getattr(env.get(START_RESPONSE_KEY), "__self__", None), env)


class _Direct:
    """The client socket, plus gunicorn's Response whose ``sent`` (the access log's body bytes)
    counts what is written here, as do the metrics."""

    def __init__(self, sock, resp, environ):
        self.sock = sock
        self.resp = resp if isinstance(getattr(resp, "sent", None), int) else None
        self.environ = environ

    def sendall(self, data) -> None:
        self.sock.sendall(data)
        if self.resp is not None:
            self.resp.sent += len(data)
        count_sent(self.environ, len(data))


def _stream(artifact, request_id, span: tuple[int, int] | None = None, sock=None, built=None):
    """The artifact's chunks as bytes (WSGI servers accept bytes only), one block at a time, or
    ``built``, the range's bytes already in memory (a part sent with its ``Content-Digest``).

    Each chunk is copied out of the encoder's reused buffer (at most one block, 1 MiB for
    float32) and handed to the server, so memory stays bounded whatever the artifact's size.
    A failure mid-stream cannot become a problem response any more: it is logged with the
    request id, and the connection closes short of Content-Length, which clients detect
    (gunicorn closes the socket when the iterator raises after the headers went out). A stream
    that ends short of ``artifact.length`` without an error raises too, so that it can never
    look like a whole response on a kept-alive connection."""
    sent = 0
    expected = artifact.length if span is None else span[1] - span[0]
    chunks = None
    try:
        chunks = iter((built,)) if built is not None else artifact.chunks() if span is None else \
            artifact.byte_range(*span)
        if sock is not None:
            yield b""  # gunicorn sends the status line and headers now
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
        else:
            for chunk in chunks:
                data = chunk if isinstance(chunk, bytes) else bytes(chunk)
                sent += len(data)
                yield data
        if sent != expected:
            raise RuntimeError(f"the {artifact.format} stream ended after {sent} of {expected} bytes")
    except (BrokenPipeError, ConnectionResetError):  # the client hung up: no error; gunicorn closes quietly
        raise
    except BlockingIOError as e:  # SO_SNDTIMEO (gunicorn.conf.py): the client took no byte for io_timeout seconds
        log.warning("artifact stream stopped after %d of %d bytes: the client took nothing for "
                    "WEIGHTINIT_IO_TIMEOUT seconds (request id %s)", sent, expected, request_id,
                    extra={"request_id": request_id, "bytes": sent})
        raise BrokenPipeError(errno.EPIPE, "the client stopped reading") from e  # closed like a hang-up
    except Exception:  # not GeneratorExit either: the generator closed early is no error
        log.exception("artifact stream failed (request id %s)", request_id,
                      extra={"request_id": request_id, "bytes": sent})
        raise
    finally:
        # Close the encoder's generator now, on any exit (a hang-up raising out of sendall, an error,
        # GeneratorExit): its block prefetch is cancelled and waited for at once, not whenever the
        # traceback that holds this frame is collected.
        if chunks is not None and hasattr(chunks, "close"):
            chunks.close()


