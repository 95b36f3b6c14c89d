"""The Prometheus metrics (``GET /metrics``, ``service.api.meta``), counting every gunicorn worker.

What is measured, per request, by ``Instrumented`` (the outermost WSGI layer, so that the fast
path's answers count like Flask's) and by the views that know more (the README lists every
metric with its labels):

- requests, their duration until the last byte and until the headers, by ``endpoint`` (the
  route template as openapi.yaml spells it, ``/v1/schemes/{name}``; ``unmatched`` for a path no
  route takes, never the raw path) and ``status``; responses in progress by endpoint;
- response body bytes, counted as the server hands them to the socket: a stream cut short
  counts what went out, a Range part what it carried;
- values in weights responses by scheme ``family`` and ``dtype``; 413s by ``limit``; response-
  cache lookups by endpoint and ``result`` (hit | miss), once per request that looks.

Every label takes a bounded set of values fixed by the code (no seed, id, path or client).

Under gunicorn every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode: gunicorn.conf.py sets the directory up before the app
is imported, empties it at start and drops a dead worker's gauges), and a scrape, answered by
any worker, sums them all. Without that variable (the CLI, tests, another server) the samples
are this process's.
"""

from __future__ import annotations

import os
import re
import time
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values

from ..core.schemes import SCHEMES

#: What generate_latest writes: Prometheus's text format 0.0.4 (what every Prometheus scrapes).
MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The WSGI environ keys: this request's Exchange (absent when metrics are off), and its route
#: template, set by whoever routes the request (Flask's before_request, the fast path).
EXCHANGE_KEY = "weightinit.metrics"
ROUTE_KEY = "weightinit.route"
#: The server's own start_response, recorded by the outermost layer of ours before anyone wraps it:
#: its owner, gunicorn's Response, counts the access log's body bytes (``weights._direct_socket``).
START_RESPONSE_KEY = "weightinit.start_response"
UNMATCHED = "unmatched"
#: Seconds: a plan or a 304 answered from the cache takes well under a millisecond, a JSON artifact
#: milliseconds to a second, a multi-GB download to a slow client minutes.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
           120.0, 300.0, 600.0, 1800.0)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("weightinit_http_requests", "Requests answered, by route template and status",
                   ["endpoint", "status"], registry=REGISTRY)
DURATION = Histogram("weightinit_http_request_duration_seconds",
                     "Seconds from the request reaching the application to its last body byte handed to the socket",
                     ["endpoint", "status"], buckets=BUCKETS, registry=REGISTRY)
HEADERS = Histogram("weightinit_http_response_start_seconds",
                    "Seconds from the request reaching the application to its status and headers (the work before "
                    "the first byte: parsing, validation, planning, bodies built in memory)",
                    ["endpoint", "status"], buckets=BUCKETS, registry=REGISTRY)
IN_PROGRESS = Gauge("weightinit_http_responses_in_progress",
                    "Responses whose headers are out and whose body is still being sent, by route template",
                    ["endpoint"], multiprocess_mode="livesum", registry=REGISTRY)
BODY_BYTES = Counter("weightinit_http_response_body_bytes",
                     "Response body bytes handed to the socket, as they go (a stream cut short counts what went out)",
                     ["endpoint", "status"], registry=REGISTRY)
VALUES = Counter("weightinit_values",
                 "Weight values in /v1/weights responses (200: every selected tensor; 206: the elements the part "
                 "covers), by the scheme family and dtype of their tensor, counted when the response starts",
                 ["family", "dtype"], registry=REGISTRY)
LIMITS = Counter("weightinit_limit_exceeded", "Requests refused with 413, by the limit they exceeded",
                 ["limit"], registry=REGISTRY)
CACHE = Counter("weightinit_response_cache_requests",
                "Requests that looked up the response cache (validated documents and small finished bodies), "
                "by route template and result (hit | miss)", ["endpoint", "result"], registry=REGISTRY)


def multiprocess_dir() -> str | None:
    """The directory of the workers' metric files when running under gunicorn.conf.py, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def check_mode() -> None:
    """Refuse to start with PROMETHEUS_MULTIPROC_DIR set but prometheus-client imported before it was
    (its values would stay in each process and a scrape would show one worker's)."""
    if multiprocess_dir() is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError("PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: "
                           "set it before the application is imported (gunicorn.conf.py does)")


def exposition() -> bytes:
    """Every metric in the text format: the sum over all workers' files, or this process's."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


@lru_cache(maxsize=None)
def child(metric, *labels: str):
    """``metric.labels(*labels)``, remembered: prometheus-client checks the labels and takes a lock on
    every call (~9 us, most of what measuring a request costs). As many as the bounded label sets."""
    return metric.labels(*labels)


@lru_cache(maxsize=256)
def endpoint_label(rule: str | None) -> str:
    """A route's label: Flask's ``/v1/schemes/<name>`` as openapi.yaml spells it, ``/v1/schemes/{name}``."""
    return UNMATCHED if rule is None else re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


class Exchange:
    """One request's measurements, kept in its WSGI environ under ``EXCHANGE_KEY``."""

    __slots__ = ("environ", "began", "status", "endpoint", "done", "_bytes")

    def __init__(self, environ):
        self.environ = environ
        self.began = time.perf_counter()
        self.status = self.endpoint = self._bytes = None
        self.done = False

    def route(self) -> str:
        return self.endpoint or endpoint_label(self.environ.get(ROUTE_KEY))

    def started(self, status: str) -> None:
        """The status line and headers are ready (start_response; again, with another status, on an error)."""
        first = self.status is None
        if first:
            self.endpoint = self.route()
            child(IN_PROGRESS, self.endpoint).inc()
        self.status = status[:3]
        self._bytes = child(BODY_BYTES, self.endpoint, self.status)
        if first:
            child(HEADERS, self.endpoint, self.status).observe(time.perf_counter() - self.began)

    def sent(self, n: int) -> None:
        """``n`` body bytes were handed to the socket."""
        if n and self._bytes is not None:
            self._bytes.inc(n)

    def finished(self, status: str | None = None) -> None:
        """The response is over (its last byte sent, or the stream cut); ``status`` when none went out."""
        if self.done:
            return
        self.done = True
        if self.status is None:
            self.endpoint, self.status = self.route(), status or "500"
        else:
            child(IN_PROGRESS, self.endpoint).dec()
        child(REQUESTS, self.endpoint, self.status).inc()
        child(DURATION, self.endpoint, self.status).observe(time.perf_counter() - self.began)


class Instrumented:
    """WSGI middleware measuring every request that reaches ``wsgi_app`` (``create_app`` puts it outermost)."""

    def __init__(self, wsgi_app):
        self.next = wsgi_app

    def __call__(self, environ, start_response):
        environ[START_RESPONSE_KEY] = start_response
        exchange = environ[EXCHANGE_KEY] = Exchange(environ)

        def measured_start_response(status, headers, exc_info=None):
            exchange.started(status)
            return start_response(status, headers, exc_info)

        try:
            body = self.next(environ, measured_start_response)
        except BaseException:
            exchange.finished("500")  # the server answers it (Flask's handlers leave nothing to get here)
            raise
        return _CountedBody(body, exchange)


class _CountedBody:
    """A response body that counts each piece once the server comes back for the next one (so the
    piece was written) and closes the exchange when the server closes it."""

    def __init__(self, body, exchange: Exchange):
        self.body = body
        self.exchange = exchange

    def __iter__(self):
        pieces = iter(self.body)
        written = 0
        while True:
            self.exchange.sent(written)  # the server came back for more: the last piece is out
            written = 0
            try:
                piece = next(pieces)
            except StopIteration:
                return
            written = len(piece)
            yield piece

    def close(self):
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.exchange.finished()


def count_sent(environ, n: int) -> None:
    """Body bytes written to the socket directly, past the server (``weights._Direct``)."""
    exchange = environ.get(EXCHANGE_KEY)
    if exchange is not None:
        exchange.sent(n)


def count_cache(environ, hit: bool) -> None:
    """One request's response-cache lookup (the fast path counts the hits it answers; Flask counts the rest)."""
    exchange = environ.get(EXCHANGE_KEY)
    if exchange is not None:
        child(CACHE, exchange.route(), "hit" if hit else "miss").inc()


def count_limit(environ, limit: str) -> None:
    """A 413 for ``limit`` (a configuration field or a fixed engine limit)."""
    if environ.get(EXCHANGE_KEY) is not None:
        child(LIMITS, limit).inc()


def value_totals(tensors) -> tuple:
    """``(scheme family, dtype, values)`` summed over ``tensors``, (TensorPlan, elements) pairs: what a
    weights response carries. A cache entry keeps these (a finished JSON answer keeps no plan)."""
    totals: dict[tuple[str, str], int] = {}
    for t, n in tensors:
        key = (SCHEMES[t.scheme["name"]].family, t.dtype.name)
        totals[key] = totals.get(key, 0) + n
    return tuple((family, dtype, n) for (family, dtype), n in totals.items())


def count_values(environ, totals: tuple) -> None:
    """The values a weights response carries, as ``value_totals`` gives them."""
    if environ.get(EXCHANGE_KEY) is None:
        return
    for family, dtype, n in totals:
        child(VALUES, family, dtype).inc(n)
