"""Under gunicorn, streamed artifacts are written from the drawing buffers to the client socket
(service.api.weights._direct_socket): the bytes are exactly the encoder's, a kept-alive
connection goes on serving after such a response, and gunicorn's access log counts the bytes."""

from __future__ import annotations

import re
import time

import requests

from tests.helpers import plan_of
from tests.helpers import artifact_of as encode

BIG = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [3000, 1000]}]}, "seed": 12,
       "format": "safetensors"}  # 12 MB: over WEIGHTINIT_DIGEST_MAX_BYTES, so it streams


def test_direct_writes_are_whole_keep_alive_and_logged(server):
    plan = plan_of({k: v for k, v in BIG.items() if k != "format"})
    expected = b"".join(bytes(c) for c in encode(plan, "safetensors").chunks())
    with requests.Session() as s:
        r1 = s.post(server.url + "/v1/weights", json=BIG, headers={"X-Request-ID": "direct-1"}, timeout=60)
        r2 = s.post(server.url + "/v1/weights", json=BIG, timeout=60,
                    headers={"X-Request-ID": "direct-2", "Range": "bytes=1000-2000999"})
        r3 = s.post(server.url + "/v1/plan", json=BIG, timeout=60)  # same connection, after two direct bodies
    assert r1.status_code == 200 and r1.content == expected
    assert r2.status_code == 206 and r2.content == expected[1000:2001000]
    assert r3.status_code == 200 and r3.json()["totals"]["bytes"]["safetensors"] == len(expected)
    deadline = time.monotonic() + 5
    while True:
        log = server.access_log()
        m1 = re.search(r'" 200 (\d+) bytes .*rid=direct-1', log)
        m2 = re.search(r'" 206 (\d+) bytes .*rid=direct-2', log)
        if (m1 and m2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert m1 and int(m1.group(1)) == len(expected)
    assert m2 and int(m2.group(1)) == 2_000_000
