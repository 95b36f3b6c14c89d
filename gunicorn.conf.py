"""gunicorn settings for weightinit: ``gunicorn -c gunicorn.conf.py 'service:create_app()'``.

Every knob comes from the environment, parsed and checked by ``service.config`` (the same
table the README documents); a bad value stops gunicorn here, at startup, with one line.
"""

import os
import shutil
import socket
import stat
import struct
import sys
import tempfile

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
#
# What keeps slow or stalled clients from pinning every thread (tests/hardening/test_load_faults.py
# opens more stalled connections of each kind than there are threads and times /healthz):
#   - a connection that sends nothing: gthread waits 5 s for its first byte in a thread, then parks
#     it on the worker's poller (no thread) and closes it after `keepalive` seconds;
#   - idle keep-alive connections wait on the poller too (no thread), closed after `keepalive`;
#   - request headers or a body that stop arriving, and a response the client stops reading: every
#     accepted socket inherits SO_RCVTIMEO / SO_SNDTIMEO = WEIGHTINIT_IO_TIMEOUT from the listening
#     socket (set in when_ready below); a read or write that makes no progress for that long fails,
#     and the connection is closed and its thread freed (a stalled body answers 408; a stalled
#     download is cut short of its Content-Length, which the client sees as truncated).
# So a stalled connection holds a thread for at most max(WEIGHTINIT_IO_TIMEOUT, 5) seconds, and
# /healthz answers once a thread frees: within ceil(stalled / threads) * max(WEIGHTINIT_IO_TIMEOUT, 5)
# seconds at worst on the worker that accepted it (measured: 8 stalled connections on 2 threads
# with a 3 s timeout, /healthz in ~19 s against a bound of 25). What this cannot bound: a client that keeps reading, however slowly (a byte every
# few seconds is progress), holds its thread for the whole download, and an attacker who keeps
# opening more stalled connections than there are threads keeps the service slow. Both are the
# job of a buffering reverse proxy in front (nginx buffers responses and requests, and limits
# connections and rates per client); there is none here, so threads * workers is the number of
# concurrent slow downloads the service tolerates.
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


def post_worker_init(worker):
    """Refuse new connections as soon as a worker stops accepting, not when its last stream ends.

    On SIGTERM the master closes its listening sockets and tells the workers to stop; each gthread
    worker stops polling its copy of them at once but (gunicorn 27) closes it only after its
    in-flight streams end, up to graceful_timeout. Meanwhile the kernel keeps completing
    handshakes into a backlog nobody accepts: a new client hangs for up to a minute, then is
    reset, where a load balancer needs a refusal to fail over at once. So a stopping worker
    closes its copies right after unregistering them from its poller (closed while registered,
    a socket other processes still hold would stay in the poller): once every worker has, the
    port refuses. A worker stopped alone (a reload, TTOU) closes only its own copies; the
    master's and the other workers' keep the socket listening.
    tests/hardening/test_graceful_shutdown.py checks all three: refused, the stream finished,
    and a reload still answering.
    """
    set_accept_enabled = worker.set_accept_enabled

    def stop_accepting_and_close(enabled):
        set_accept_enabled(enabled)  # unregisters the listeners from the poller first
        if not enabled and not worker.alive:
            for listener in worker.sockets:
                listener.close()  # idempotent: gthread's own cleanup closes them again

    worker.set_accept_enabled = stop_accepting_and_close


def when_ready(server):
    """SO_RCVTIMEO / SO_SNDTIMEO on the listening sockets; Linux copies them into every accepted
    socket, where they hold whatever gunicorn does with the socket's blocking mode afterwards
    (Python's settimeout would be reset by gthread's setblocking(True))."""
    tv = struct.pack("ll", _cfg.io_timeout, 0)
    for listener in server.LISTENERS:
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)

# Logs: the access log to stdout with the request id (the X-Request-ID the app echoes or sets)
# and the duration; the error log (startup, worker restarts, tracebacks of 500s) to stderr.
# WEIGHTINIT_LOG_FORMAT=json: both as one JSON object per line (service/api/logs.py).
accesslog = "-"
errorlog = "-"
loglevel = _cfg.log_level
access_log_format = ('%(h)s %(t)s "%(r)s" %(s)s %(B)s bytes %(M)sms '
                     'rid=%({x-request-id}o)s "%(a)s"')
if _cfg.log_format == "json":
    logger_class = "service.api.logs.JsonLogger"

# Metrics (service/api/metrics.py): every worker writes its samples to files in one directory and
# a scrape sums them (prometheus-client's multiprocess mode), so /metrics counts every worker
# whichever one answers it. prometheus-client chooses that mode when it is imported, which
# preload_app does in the master right after gunicorn applies raw_env: the variable is set there,
# not here (this file is also read by tools that must not have it). The default directory is
# private to this master (named after its pid, which a reload keeps) and removed at exit; the
# directory is emptied at startup either way, so no sample of an earlier run is summed in.
if _cfg.metrics == "on":
    _metrics_dir = os.path.abspath(_cfg.metrics_dir or os.path.join(tempfile.gettempdir(),
                                                                    f"weightinit-metrics-{os.getpid()}"))
    raw_env = [f"PROMETHEUS_MULTIPROC_DIR={_metrics_dir}"]


def on_starting(server):
    """Make (or empty) the metrics directory before any worker writes to it."""
    if _cfg.metrics != "on":
        return
    try:
        os.makedirs(_metrics_dir, mode=0o700, exist_ok=True)
        info = os.lstat(_metrics_dir)
        # The private default sits in a shared temporary directory under a guessable name: it must be
        # ours and a real directory, not something another user prepared there.
        if not stat.S_ISDIR(info.st_mode) or (not _cfg.metrics_dir and info.st_uid != os.getuid()):
            raise NotADirectoryError("not a directory of this user")
        for name in os.listdir(_metrics_dir):
            if name.endswith(".db"):  # the samples of an earlier run; nothing else is touched
                os.remove(os.path.join(_metrics_dir, name))
    except OSError as e:
        print(f"weightinit: configuration error: WEIGHTINIT_METRICS_DIR {_metrics_dir} cannot hold the metrics: "
              f"{e.strerror or e}", file=sys.stderr)
        sys.exit(2)


def child_exit(server, worker):
    """A worker is gone: drop its live gauges (responses in progress), which would stay up forever.
    Its counters and histograms stay: totals never go down."""
    if _cfg.metrics == "on":
        from prometheus_client import multiprocess  # imported by the app already, after raw_env was applied

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def on_exit(server):
    if _cfg.metrics == "on" and not _cfg.metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)

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
