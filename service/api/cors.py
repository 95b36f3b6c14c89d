"""Requests from web pages on other origins (CORS, the Fetch standard), for ``WEIGHTINIT_CORS_ORIGINS``.

Off by default (no origin configured): no hook is installed and no response changes. With a list
of origins (``service.config.parse_origins`` normalizes them to what browsers send):

- a response to a request whose ``Origin`` is in the list, compared as an exact string (no
  prefix, suffix or pattern matching, never ``null``), carries ``Access-Control-Allow-Origin:
  <that origin>`` and ``Access-Control-Expose-Headers`` (``EXPOSED``); errors too, so that a page
  reads a 422's field paths;
- every response carries ``Vary: Origin``, with or without an ``Origin``: a shared cache must not
  hand one origin's answer (or a header-less one) to another;
- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is Flask's own
  answer to OPTIONS (200, ``Allow``, no body) plus, for an allowed origin,
  ``Access-Control-Allow-Methods`` (the resource's methods), ``Access-Control-Allow-Headers``
  (``ALLOWED_REQUEST_HEADERS``) and ``Access-Control-Max-Age`` (``MAX_AGE``). It does not depend
  on the method or headers asked for: the browser checks them against the lists itself;
- an origin not in the list gets the answer any client gets, without CORS headers: the browser
  then withholds the response from the page (its ``fetch`` rejects with a TypeError).

``*`` (only when set explicitly) allows any origin: ``Access-Control-Allow-Origin: *`` and the
exposed headers on every response, which then vary by nothing. Never
``Access-Control-Allow-Credentials``: the API reads no cookie or credential, so pages call it
with ``credentials: "omit"`` (fetch's default across origins).

``Cors.apply`` decides the headers of every answer: Flask's (``register``) and the fast path's
(``service.api.fastpath``), so the two cannot differ.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from flask import Flask, Response, request

from .http import OWN_HEADERS

#: The response headers a page may read besides the CORS-safelisted ones (Content-Type, ...): the
#: validators, digests and file name of an artifact, its byte range, and the service's own headers.
#: Content-Length is safelisted already; it is listed for older browsers.
EXPOSED = ("ETag", "Repr-Digest", "Content-Digest", "Content-Disposition", "Content-Range", "Content-Length",
           "Accept-Ranges", *OWN_HEADERS, "X-Request-ID")
#: The request headers the API reads (openapi.yaml's header parameters, and the body's Content-Type).
ALLOWED_REQUEST_HEADERS = ("Content-Type", "Accept", "Range", "If-Range", "If-None-Match", "X-Request-ID")
#: Seconds a browser may reuse a preflight answer: Chromium caps it at 7200 (Firefox at 86400).
MAX_AGE = 7200
ANY = "*"


class Cors:
    """The CORS policy of one application: its allowed origins (``Config.cors_origins``)."""

    def __init__(self, origins: tuple[str, ...]):
        self.enabled = bool(origins)
        self.any = origins == (ANY,)
        self.origins = frozenset(origins)

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` for a request with this ``Origin`` header, or None."""
        if self.any:
            return ANY
        return origin if origin is not None and origin in self.origins else None

    def apply(self, headers: MutableMapping[str, str], origin: str | None, preflight_methods=None) -> None:
        """Add the CORS headers of an answer to a request with this ``Origin`` (None: it had none) to
        ``headers``. ``preflight_methods``: the resource's methods when the request is a preflight."""
        if not self.enabled:
            return
        if not self.any:
            vary = headers.get("Vary")
            if vary is None:
                headers["Vary"] = "Origin"
            elif "origin" not in {v.strip().lower() for v in vary.split(",")}:
                headers["Vary"] = f"{vary}, Origin"
        allow = self.allowed(origin)
        if allow is None:
            return
        headers["Access-Control-Allow-Origin"] = allow
        if preflight_methods is None:
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED)
        else:
            headers["Access-Control-Allow-Methods"] = ", ".join(preflight_methods)
            headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_REQUEST_HEADERS)
            headers["Access-Control-Max-Age"] = str(MAX_AGE)


def _preflight_methods(resp: Response) -> list[str] | None:
    """The methods to allow when this answers a preflight, sorted: those Flask's OPTIONS answer lists
    in ``Allow``, but OPTIONS. None for any other answer (a preflight of an unknown path is a 404:
    the browser refuses it for its status)."""
    if (request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers
            or resp.status_code != 200 or "Allow" not in resp.headers):
        return None
    return sorted({m.strip() for m in resp.headers["Allow"].split(",")} - {"OPTIONS", ""}) or None


def register(app: Flask, origins: tuple[str, ...]) -> Cors:
    """The policy for ``origins``; when there are any, every response of ``app`` (errors and
    preflights included) gets its headers."""
    policy = Cors(origins)
    if policy.enabled:
        @app.after_request
        def _cors(resp: Response) -> Response:
            policy.apply(resp.headers, request.headers.get("Origin"), _preflight_methods(resp))
            return resp
    return policy
