"""Record the corpus: ``python -m tests.corpus.record`` rewrites tests/corpus/digests.json.

Only right when bytes change on purpose: ENGINE_VERSION moves and CHANGELOG.md says why.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from service.core import linalg_identity

from .documents import RECORDED_HEADERS, REQUEST_HEADERS, exchanges

DIGESTS = Path(__file__).with_name("digests.json")
#: The ETag of an artifact holding an orthogonal tensor covers the machine's BLAS/LAPACK (kernel,
#: thread count): pinned here, so that the corpus pins what the service computes from it.
PINNED_LINALG = {"machine": "corpus", "blas": None, "lapack": None, "openblas": None}


@contextmanager
def pinned_linalg():
    with mock.patch.object(linalg_identity, "identity", lambda: PINNED_LINALG):
        yield


def run(client, exchange: dict) -> dict:
    """One exchange against a Flask test client: status, the recorded headers, the body's sha-256."""
    headers = {**REQUEST_HEADERS, **exchange["headers"]}
    content_type = headers.pop("Content-Type", "application/json")
    r = client.post(exchange["path"], data=exchange["body"], content_type=content_type, headers=headers)
    body = r.get_data()
    return {"status": r.status_code,
            "headers": {k: r.headers[k] for k in RECORDED_HEADERS if k in r.headers},
            "sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}


def record() -> dict:
    from service import create_app

    client = create_app().test_client()
    with pinned_linalg():
        return {e["name"]: run(client, e) for e in exchanges()}


def main() -> int:
    digests = record()
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(digests)} exchanges in {DIGESTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
