"""Block-seeded random streams: the reproducibility contract.

Every tensor is a flat C-order sequence of elements cut into blocks of ``BLOCK_ELEMENTS``.
Block ``b`` of the tensor at architecture position ``p`` (counting every tensor of the full
architecture, selected or not) is drawn from its own generator::

    numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(p, b))))

So a tensor's values depend only on (seed, p, shape, scheme, dtype), never on which other
tensors are selected, the output format, chunking, threads or processes; any block can be
drawn on its own, in any order, in parallel. Whole-matrix schemes (orthogonal, sparse) draw
their Gaussian matrix from the same block streams, plus (sparse) one extra stream with
``spawn_key=(p, EXTRA_KEY)`` for the zero positions.

``BLOCK_ELEMENTS`` and the key layout are part of the output contract: changing either
changes every artifact (golden digests in the tests catch it).
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from . import seeds

BLOCK_ELEMENTS = 1 << 18
EXTRA_KEY = 1 << 32
BIT_GENERATOR = "PCG64"

_POOL: ThreadPoolExecutor | None = None
_POOL_PID = None


def block_rng(seed: int, position: int, block: int) -> np.random.Generator:
    """``Generator(PCG64(SeedSequence(seed, spawn_key=(position, block))))``, its seed words computed
    by ``seeds`` (NumPy's SeedSequence or its compiled twin: the same words)."""
    return np.random.Generator(np.random.PCG64(seeds.sequence(seed, position, block)))


def extra_rng(seed: int, position: int) -> np.random.Generator:
    return block_rng(seed, position, EXTRA_KEY)


def n_blocks(size: int) -> int:
    return max(1, math.ceil(size / BLOCK_ELEMENTS))


def block_bounds(size: int, block: int) -> tuple[int, int]:
    start = block * BLOCK_ELEMENTS
    return start, min(size, start + BLOCK_ELEMENTS)


def pool() -> ThreadPoolExecutor:
    """One shared thread pool per process (NumPy's generators release the GIL).

    Rebuilt after a fork (gunicorn preloading) since threads do not survive one."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        workers = int(os.environ.get("WEIGHTINIT_GEN_THREADS", "0")) or (os.cpu_count() or 1)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="weightinit-gen")
        _POOL_PID = os.getpid()
    return _POOL


def pipelined(count: int, produce: Callable[[int, int], np.ndarray], *, depth: int | None = None,
              parallel: bool = True) -> Iterator[np.ndarray]:
    """Yield ``produce(i, slot)`` for i in range(count), in order, computed ahead in the pool.

    ``slot`` cycles over ``depth + 1`` values so that ``produce`` can write into reused
    per-slot buffers: a slot is handed out again only after the consumer asked for the next
    item, i.e. is done with the item that used it.
    """
    if not parallel or count == 1:
        for i in range(count):
            yield produce(i, i % 2)
        return
    depth = depth or max(2, (pool()._max_workers) + 1)
    ring = depth + 1
    ex = pool()
    pending: deque = deque()
    nxt = 0
    while nxt < min(depth, count):
        pending.append(ex.submit(produce, nxt, nxt % ring))
        nxt += 1
    try:
        for _ in range(count):
            item = pending.popleft().result()
            yield item
            if nxt < count:
                pending.append(ex.submit(produce, nxt, nxt % ring))
                nxt += 1
    finally:
        for fut in pending:
            fut.cancel()
        for fut in pending:
            if not fut.cancelled():
                fut.exception()  # wait, so no task writes into buffers being released
