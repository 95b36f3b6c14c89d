"""An LRU of validated requests and small finished responses, keyed by a hash of the raw body.

A plan, a report and a JSON artifact are pure functions of the request body (plus the Accept
header, which picks the format, and the configuration, fixed per app). Clients re-post the
same documents (polling ``/v1/plan``, a training job fetching the same small model at every
start, sharded fetches asking the same document many times with different ``Range`` headers),
so the parse -> validate -> plan -> report work is done once per distinct body and remembered:

- ``/v1/plan``: the finished body and headers;
- ``/v1/weights``: the Plan, format and headers (so each Range request of a sharded fetch skips
  validation), plus the finished body of JSON artifacts up to ``MAX_BODY_BYTES``.

Bounded by entry count and by bytes held: every byte an entry keeps is counted (finished bodies,
an artifact's header, the JSON body attached after the first request, and an estimate of the Plan
object itself), and what is attached later goes through ``attach`` so that it is counted and evicts
like the rest. Errors are never cached (they raise before ``put``).
Plans of ``rng: torch`` documents are not kept (their replay state is not shared between
threads). Thread-safe: gthread workers serve several requests at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..core.plan import Plan
from ..output.artifact import Artifact
from ..output.options import DEFAULT as DEFAULT_OPTIONS
from ..output.options import Options
from ..output.report import Report

#: Most entries kept, and most bytes of finished bodies held (per worker process).
MAX_ENTRIES = 512
MAX_BYTES = 32 << 20
#: A finished body larger than this is rebuilt on every request instead of being kept.
MAX_BODY_BYTES = 1 << 20
#: An entry larger than this (a plan of thousands of tensors, with its body) is not kept at all: one
#: entry never takes more than a quarter of the cache.
MAX_ENTRY_BYTES = MAX_BYTES // 4
#: Memory a Plan keeps per tensor (its TensorPlan, spec, distribution and theory objects; measured with
#: tracemalloc at 1.5-2.3 KB per tensor for plans of 2 to 2,000 tensors), for the entries that keep one.
PLAN_BYTES_PER_TENSOR = 2 << 10


@dataclass
class Entry:
    headers: dict
    body: bytes | None = None          # a finished response body (a plan)
    plan: Plan | None = None           # /v1/weights: the plan, its report, the negotiated format
    report: Report | None = None
    fmt: str | None = None
    media_type: str | None = None
    options: Options = DEFAULT_OPTIONS  # safetensors metadata, hf shard size
    artifact: Artifact | None = None   # binary formats: the (lazy) artifact every request of this body shares
    json: tuple[bytes, str] | None = None  # small JSON artifacts: (body, sha-256 hex), attached once built
    over_limits: tuple = ()            # limits only a Range part can be held to (SpecErrors), checked per request
    held: int = 0                      # other bytes the entry keeps alive (the plan, an artifact's header)
    key: bytes | None = None           # set by put

    @property
    def size(self) -> int:
        return (len(self.body) if self.body is not None else 0) + self.held


class ResponseCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(*parts: bytes | str | None) -> bytes:
        h = hashlib.sha256()
        for p in parts:
            b = b"\x00" if p is None else (p.encode() if isinstance(p, str) else p)
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.digest()

    def get(self, key: bytes) -> Entry | None:
        with self._lock:
            e = self._items.get(key)
            if e is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return e

    def put(self, key: bytes, entry: Entry) -> Entry:
        if entry.body is not None and len(entry.body) > MAX_BODY_BYTES:
            entry.body = None
        if entry.size > MAX_ENTRY_BYTES:
            return entry  # too large to keep at all
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            entry.key = key
            self._items[key] = entry
            self._bytes += entry.size
            self._evict()
        return entry

    def attach_json(self, entry: Entry, body: bytes, sha256: str) -> bool:
        """Keep a built JSON body in a cached entry, counted like the rest; False (and nothing kept) when
        the entry is no longer cached, the body is larger than ``MAX_BODY_BYTES`` or the entry would grow
        past ``MAX_ENTRY_BYTES``."""
        with self._lock:
            if (entry.key is None or self._items.get(entry.key) is not entry or len(body) > MAX_BODY_BYTES
                    or entry.size + len(body) > MAX_ENTRY_BYTES):
                return False
            entry.json = (body, sha256)
            entry.held += len(body)
            self._bytes += len(body)
            self._evict()
        return True

    def _evict(self) -> None:
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.size
            dropped.key = None

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes, "hits": self.hits, "misses": self.misses}
