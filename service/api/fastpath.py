"""The lean path: repeated requests answered from the cache before Flask's request machinery.

A hello-world Flask view costs about a millisecond of CPU per request here, most of it Flask
and gunicorn; a request of this service that the cache already knows (``service.api.cache``: the
same body and Accept header validated before) has nothing left to compute, so pushing it through
Flask's request context, routing, hooks and Response objects would be most of its cost. This WSGI
layer answers exactly those:

- ``POST /v1/plan`` and ``POST /v1/weights`` (JSON artifacts) whose finished body is cached: 200;
- any cached ``/v1/plan`` or ``/v1/weights`` request whose ``If-None-Match`` names its ETag: 304,

with the headers Flask would send (the tests compare the two paths header by header; the CORS
headers come from the same ``Cors.apply``), counted in the metrics as Flask's answers are
(``service.api.metrics``: the route, a cache hit, the values), and hands
everything else to Flask untouched (the body it read is put back): a miss, an error, a Range, a
binary artifact, an unusual Content-Type or charset, an over-long header. It never decides
anything Flask would decide differently: a cache entry exists only for a body that passed every
check with this Accept header and this configuration.
"""

from __future__ import annotations

import base64
import io
import uuid

from werkzeug.datastructures import Headers
from werkzeug.http import parse_etags

from ..version import ENGINE_VERSION
from .cache import ResponseCache
from .cors import Cors
from .http import VERSION_HEADER
from .metrics import ROUTE_KEY, START_RESPONSE_KEY, count_cache, count_values

PATHS = ("/v1/plan", "/v1/weights")


class FastPath:
    """WSGI middleware over ``wsgi_app``, answering from ``cache`` (``create_app`` wires both)."""

    def __init__(self, wsgi_app, cache: ResponseCache, *, max_body: int, request_id, max_headers: dict, cors: Cors):
        self.next = wsgi_app
        self.cache = cache
        self.cors = cors
        self.enabled = True
        self.max_body = max_body
        self.request_id = request_id
        self.max_headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in max_headers.items()}

    def __call__(self, environ, start_response):
        # gunicorn's Response (start_response's owner), for the body bytes written to the socket
        # directly to be counted in its access log (weights._direct_socket); the metrics layer, when
        # there is one, has recorded it already (its own start_response wraps the server's).
        environ.setdefault(START_RESPONSE_KEY, start_response)
        path = environ.get("PATH_INFO")
        if not self.enabled or path not in PATHS or environ.get("REQUEST_METHOD") != "POST":
            return self.next(environ, start_response)
        if ((environ.get("CONTENT_TYPE") or "").strip().lower() != "application/json" or "HTTP_RANGE" in environ
                or "HTTP_TRANSFER_ENCODING" in environ):
            return self.next(environ, start_response)
        for name, allowed in self.max_headers.items():
            if len(environ.get(name, "")) > allowed:
                return self.next(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or "-1")
        except ValueError:
            return self.next(environ, start_response)
        if not 0 < length <= self.max_body:
            return self.next(environ, start_response)
        stream = environ["wsgi.input"]
        body = b""
        try:
            while len(body) < length:
                more = stream.read(length - len(body))
                if not more:
                    break
                body += more
        except OSError:
            pass
        if len(body) != length:  # short or broken body: Flask answers it (408)
            # Content-Length stays the announced one, so werkzeug sees the body end short of it:
            # a truncated body must never pass for a whole one (it may even parse as JSON)
            environ["wsgi.input"] = io.BytesIO(body)
            environ.pop("wsgi.input_terminated", None)  # else werkzeug reads the BytesIO to its end and trusts it
            return self.next(environ, start_response)
        entry = self.cache.get(ResponseCache.key(path, environ.get("HTTP_ACCEPT"), body))
        if entry is None or entry.over_limits:
            return self._fall_through(environ, start_response, body)
        headers = entry.headers
        inm = environ.get("HTTP_IF_NONE_MATCH")
        if inm and parse_etags(inm).contains_weak(headers["ETag"].strip('"')):
            return self._respond(environ, start_response, "304 NOT MODIFIED", list(headers.items()), b"")
        if path == "/v1/plan":
            payload, extra = entry.body, []
        else:
            cached = entry.json if entry.fmt == "json" else None
            if cached is None:
                return self._fall_through(environ, start_response, body)
            payload, digest = cached
            extra = [("Repr-Digest", f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:")]
        if payload is None:
            return self._fall_through(environ, start_response, body)
        out = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        out += list(headers.items()) + extra
        count_values(environ, entry.values)
        return self._respond(environ, start_response, "200 OK", out, payload)

    def _fall_through(self, environ, start_response, body: bytes):
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.next(environ, start_response)

    def _respond(self, environ, start_response, status: str, headers: list, payload: bytes):
        environ[ROUTE_KEY] = environ["PATH_INFO"]  # one of PATHS: the route template itself
        count_cache(environ, hit=True)
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        rid = incoming if self.request_id.fullmatch(incoming) else uuid.uuid4().hex
        headers = headers + [(VERSION_HEADER, ENGINE_VERSION), ("X-Content-Type-Options", "nosniff"),
                             ("X-Request-ID", rid)]
        if self.cors.enabled:
            out = Headers(headers)
            self.cors.apply(out, environ.get("HTTP_ORIGIN"))
            headers = out.to_wsgi_list()
        start_response(status, headers)
        return [payload]
