"""A loopback HTTP proxy to the test server that corrupts safetensors bodies: clients must notice."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import requests

from tests.loopback import loopback_server


class _CorruptingProxy(BaseHTTPRequestHandler):
    """Forwards to the real server and flips one bit of the last byte of every safetensors body
    (the last element of the last tensor); everything else passes unchanged."""

    upstream = ""

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "content-type")}
        up = requests.request(self.command, self.upstream + self.path, data=body or None, headers=headers, timeout=60)
        content = up.content
        media = up.headers.get("Content-Type", "")
        if media.startswith("application/vnd.safetensors"):
            content = content[:-1] + bytes([content[-1] ^ 0x01])
        self.send_response(up.status_code)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


def corrupting_proxy(upstream: str):
    """A ``with`` that yields the proxy's base URL (127.0.0.1, a free port) and stops it afterwards."""
    return loopback_server(type("Proxy", (_CorruptingProxy,), {"upstream": upstream}))
