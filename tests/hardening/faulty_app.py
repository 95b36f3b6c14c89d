"""A test-only WSGI entry point: the real ``create_app()`` with faults injected, for gunicorn::

    gunicorn -c gunicorn.conf.py 'tests.hardening.faulty_app:create()'

- ``GET /__test__/boom`` raises an exception whose message holds "secrets" (a forced 500);
- ``WEIGHTINIT_TEST_FAULT=raise`` makes every artifact's byte stream raise once
  ``WEIGHTINIT_TEST_FAULT_BYTES`` bytes (default 4 MiB) went out, as a failing encoder would;
- ``WEIGHTINIT_TEST_FAULT=short`` makes it stop there silently, as a buggy encoder would.

The fault wraps what ``/v1/weights`` gets from ``formats.encode`` (whatever the encoders do inside).
Nothing here is importable from the service package; it only wraps it.
"""

from __future__ import annotations

import dataclasses
import os

from service.output import formats as _formats

SECRET = "secret-internals: /etc/shadow password=hunter2"


def _faulty(encode, mode: str, limit: int):
    def faulty_encode(plan, fmt, **kw):
        artifact = encode(plan, fmt, **kw)

        def chunks():
            sent = 0
            for chunk in artifact_chunks():
                if sent >= limit:
                    if mode == "raise":
                        raise RuntimeError(f"injected encoder failure: {SECRET}")
                    return
                sent += len(chunk)
                yield chunk

        artifact_chunks = artifact.chunks
        return dataclasses.replace(artifact, chunks=chunks)

    return faulty_encode


class _FaultyFormats:
    """The formats registry as ``service.api.weights`` sees it, with a faulty ``encode``."""

    def __init__(self, encode):
        self.encode = encode

    def __getattr__(self, name):
        return getattr(_formats, name)


def create():
    from service import create_app
    from service.api import weights

    app = create_app()

    @app.get("/__test__/boom")
    def boom():
        raise RuntimeError(SECRET)

    mode = os.environ.get("WEIGHTINIT_TEST_FAULT")
    if mode:
        assert mode in ("raise", "short"), mode
        weights.formats = _FaultyFormats(_faulty(_formats.encode, mode, int(os.environ.get("WEIGHTINIT_TEST_FAULT_BYTES",
                                                                                           str(4 << 20)))))
    return app
