"""A threaded HTTP server of the test's own on 127.0.0.1 (a free port), for as long as a ``with`` lasts."""

from __future__ import annotations

import contextlib
import threading
from http.server import ThreadingHTTPServer


@contextlib.contextmanager
def loopback_server(handler):
    """Serve ``handler`` (a ``BaseHTTPRequestHandler`` class or factory): yields the base URL, stops after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
