"""JSON logs (``WEIGHTINIT_LOG_FORMAT=json``): gunicorn's logger, writing one JSON object per line.

Every line of both logs has the same members, ``null`` where they do not apply::

    time         ISO 8601, UTC, milliseconds ("2026-11-25T09:14:03.512Z")
    level        debug | info | warning | error | critical
    log          access | error
    request_id   the X-Request-ID the response carried (an error line: the request it concerns)
    method, path the request's method and path (no query string)
    status       the HTTP status (an integer)
    bytes        body bytes sent, as the text access log counts them (a cut stream: what went out)
    duration     seconds from the request line to the last byte (microseconds)
    seed         X-Weightinit-Seed (plans, weights, diagnostics; an integer)
    fingerprint  the fingerprint in the ETag of a plan, weights or diagnostics response
                 (``"<fingerprint>-<format>[options]"``; 304s included)
    message      an error line's text (null on access lines)

plus ``remote`` and ``user_agent`` on access lines, and ``logger``, ``pid`` and, for a traceback,
``exception`` (its text, newlines escaped) on error lines. The error log also takes the records
of the application (``weightinit``) and of Python's warnings, so that nothing else lands between
the lines as plain text.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone

import orjson
from gunicorn import glogging

from ..output.options import TAG_SUFFIX

#: Members of every line, in order (tests/ops/test_json_logs.py checks each line carries them).
FIELDS = ("time", "level", "log", "request_id", "method", "path", "status", "bytes", "duration", "seed",
          "fingerprint", "message")
#: The members an application record may carry (``log.warning(..., extra={"request_id": ...})``).
REQUEST_FIELDS = ("request_id", "method", "path", "status", "bytes", "duration", "seed", "fingerprint")
#: A plan's, weights' or diagnostics' ETag: "<sha-256 hex>-<format>", plus the output options that change
#: its bytes (``"<fingerprint>-hf.minimal.shard1000000"``).
FINGERPRINTED_ETAG = re.compile(r'"([0-9a-f]{64})-[a-z]+' + TAG_SUFFIX + '"')


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """An error-log record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _time(record.created), "level": record.levelname.lower(), "log": "error"}
        line.update({k: getattr(record, k, None) for k in REQUEST_FIELDS})
        line["message"] = record.getMessage()
        line["logger"] = record.name
        line["pid"] = record.process
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def access_line(resp, environ, request_time) -> dict:
    """The access-log object of one exchange (gunicorn's Response, the WSGI environ, a timedelta)."""
    headers = {name.lower(): value for name, value in resp.headers}
    seed = headers.get("x-weightinit-seed")
    etag = FINGERPRINTED_ETAG.fullmatch(headers.get("etag", ""))
    return {"time": _time(datetime.now(timezone.utc).timestamp()), "level": "info", "log": "access",
            "request_id": headers.get("x-request-id"), "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"), "status": resp.status_code, "bytes": resp.sent,
            "duration": round(request_time.total_seconds(), 6),
            "seed": int(seed) if seed is not None and seed.isdigit() else None,
            "fingerprint": etag.group(1) if etag else None, "message": None,
            "remote": environ.get("REMOTE_ADDR"), "user_agent": environ.get("HTTP_USER_AGENT")}


class JsonLogger(glogging.Logger):
    """gunicorn's logger (``logger_class`` in gunicorn.conf.py) with both logs as JSON lines."""

    #: The handlers this logger gave the root logger (replaced when gunicorn reloads its configuration).
    _root_handlers: tuple = ()

    def setup(self, cfg):
        super().setup(cfg)
        formatter = JsonFormatter()
        handlers = tuple(h for h in self.error_log.handlers if getattr(h, "_gunicorn", False))
        for handler in handlers:
            handler.setFormatter(formatter)
        # The application's records (and warnings) propagate to the root logger, which had no handler
        # (Python then prints the bare message to stderr): give it the error log's, so they are JSON too.
        root = logging.getLogger()
        for handler in self._root_handlers:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        self._root_handlers = handlers
        root.setLevel(self.loglevel)
        logging.captureWarnings(True)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info("%s", orjson.dumps(access_line(resp, environ, request_time)).decode())
        except Exception:
            self.exception("could not write an access-log line")
