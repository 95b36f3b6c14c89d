"""The Flask application factory: ``create_app(config=None)``.

``config`` is a dict overriding the environment (``service.config``); a bad value raises
``ConfigError`` here, at startup. Every response gets ``X-Weightinit-Version``,
``X-Content-Type-Options: nosniff`` and ``X-Request-ID`` (a sane incoming one echoed,
otherwise a fresh one), errors included; and, for the origins of ``WEIGHTINIT_CORS_ORIGINS``,
the CORS headers (``service.api.cors``). With metrics on (``WEIGHTINIT_METRICS``), every
request is measured by the outermost WSGI layer and ``GET /metrics`` serves the counts.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, g, request

from ..config import load_config
from . import calibrate, cors, diagnose, errors, meta, metrics, schemes, weights
from .cache import ResponseCache
from .errors import Problem
from .fastpath import FastPath
from .http import CACHE_KEY, CONFIG_KEY, FASTPATH_KEY, common_headers

#: An incoming X-Request-ID is echoed when it looks like an id (no spaces, no control characters).
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
#: The longest value accepted per request header that the API reads (openapi.yaml's maxLength); longer is
#: a 400 naming the header. If-None-Match: some 25 of this service's ETags. gunicorn itself refuses any
#: header line over 8190 bytes (limit_request_field_size, gunicorn.conf.py) before the app sees it.
MAX_HEADER_LENGTHS = {"If-None-Match": 2048, "Range": 200, "If-Range": 200}


def create_app(config: dict | None = None) -> Flask:
    cfg = load_config(config)
    app = Flask("service", static_folder=None)
    app.extensions[CONFIG_KEY] = cfg
    # Bodies with a Content-Length are checked against max_body_bytes before reading; chunked ones are
    # read through werkzeug's LimitedStream, capped one byte past the limit (see http.read_json_body).
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes + 1
    app.json.sort_keys = False

    @app.before_request
    def _request_id():
        request.environ[metrics.ROUTE_KEY] = request.url_rule.rule if request.url_rule is not None else None
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        for name, allowed in MAX_HEADER_LENGTHS.items():
            value = request.headers.get(name)
            if value is not None and len(value) > allowed:
                raise Problem(400, "Bad Request", f"the {name} header has {len(value)} characters; at most {allowed} "
                                                  "are allowed", header=name, allowed=allowed)

    @app.after_request
    def _headers(resp):
        if "request_id" not in g:  # a request that failed before before_request ran
            g.request_id = uuid.uuid4().hex
        return common_headers(resp, g.request_id)

    errors.register(app)
    policy = cors.register(app, cfg.cors_origins)
    app.register_blueprint(meta.bp)
    app.register_blueprint(schemes.bp)
    app.register_blueprint(weights.bp)
    app.register_blueprint(diagnose.bp)
    app.register_blueprint(calibrate.bp)
    if cfg.metrics == "on":
        metrics.check_mode()
        app.register_blueprint(meta.metrics_bp)
    # Validated requests and small finished answers, per worker; repeats of a cached body are answered
    # from it by the fast path, before Flask's request machinery (service.api.fastpath).
    cache = app.extensions[CACHE_KEY] = ResponseCache()
    fast = app.extensions[FASTPATH_KEY] = FastPath(app.wsgi_app, cache, max_body=cfg.max_body_bytes,
                                                   request_id=REQUEST_ID, max_headers=MAX_HEADER_LENGTHS, cors=policy)
    # Outermost, so that the fast path's answers are measured like Flask's.
    app.wsgi_app = metrics.Instrumented(fast) if cfg.metrics == "on" else fast
    return app
