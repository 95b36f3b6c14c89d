"""Record the corpus: ``python -m tests.corpus.record`` rewrites tests/corpus/digests.json.

Only right when bytes change on purpose: ENGINE_VERSION moves and CHANGELOG.md says why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .documents import RECORDED_HEADERS, REQUEST_HEADERS, exchanges

DIGESTS = Path(__file__).with_name("digests.json")


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
    return {e["name"]: run(client, e) for e in exchanges()}


def main() -> int:
    digests = record()
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(digests)} exchanges in {DIGESTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
