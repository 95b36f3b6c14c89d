"""gunicorn settings for weightinit: ``gunicorn -c gunicorn.conf.py 'service:create_app()'``.

Every knob comes from the environment, parsed and checked by ``service.config`` (the same
table the README documents); a bad value stops gunicorn here, at startup, with one line.
"""

import os
import sys

from service.config import ConfigError, load_config

try:
    _cfg = load_config()
except ConfigError as e:  # one clear line, no traceback, before any worker starts
    print(f"weightinit: configuration error: {e}", file=sys.stderr)
    sys.exit(2)

bind = f"[{_cfg.host}]:{_cfg.port}" if ":" in _cfg.host else f"{_cfg.host}:{_cfg.port}"

# Generating weights is CPU-bound NumPy work that releases the GIL and already spreads over the
# cores through the engine's per-process thread pool (WEIGHTINIT_GEN_THREADS), so one process per
# core is enough; more processes only multiply memory. WEIGHTINIT_WORKERS overrides.
workers = _cfg.workers or max(1, os.cpu_count() or 1)

# gthread, not sync: a large artifact streams for as long as the *client* takes to read it. A sync
# worker serves one connection at a time, so a handful of slow clients downloading multi-GB files
# would pin every worker and the service would stop answering even /healthz. Each gthread worker
# serves up to `threads` connections at once; the pool is bounded, so memory is bounded too
# (a stream holds a few MiB of block buffers at most), and connections beyond
# workers * threads wait in the listen backlog instead of spawning unbounded threads.
worker_class = "gthread"
threads = _cfg.threads
# Idle keep-alive connections a worker holds (beyond the threads busy with requests).
worker_connections = 100

# Timeouts fit for streaming large artifacts. With gthread the worker's main loop keeps notifying
# the master while its threads stream, so `timeout` only catches a hung worker, never a long
# download; `graceful_timeout` is how long in-flight streams get to finish on shutdown/reload.
timeout = _cfg.timeout
graceful_timeout = _cfg.graceful_timeout
keepalive = _cfg.keepalive

# Logs: the access log to stdout with the request id (the X-Request-ID the app echoes or sets)
# and the duration; the error log (startup, worker restarts, tracebacks of 500s) to stderr.
accesslog = "-"
errorlog = "-"
loglevel = _cfg.log_level
access_log_format = ('%(h)s %(t)s "%(r)s" %(s)s %(B)s bytes %(M)sms '
                     'rid=%({x-request-id}o)s "%(a)s"')

# Import the app (and NumPy) once in the master: workers fork with it already loaded, start fast,
# share those pages, and an import error fails at startup instead of in a restart loop. The
# engine rebuilds its thread pool after the fork.
preload_app = True

# Never debug or auto-reload in the service.
reload = False
# The request body limit is enforced by the app (413 max_body_bytes); these bound header parsing.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# gunicorn >= 25 opens a control socket at one fixed per-user path: several instances on one machine
# (the service, test servers) would fight over it, and nothing here uses it.
control_socket_disable = True
