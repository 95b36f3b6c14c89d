"""Drawing a tensor's values: the three ways a tensor is produced, one class each.

- ``Blockwise``: i.i.d. distributions, drawn block by block, each block from its own seeded stream
  (``streams``), in parallel on the engine's threads into reused buffers: any slice alone, any size
  in bounded memory.
- ``WholeMatrix``: orthogonal, sparse, identity, dirac, the forget-gate bias: drawn at once (their
  Gaussian matrices from the same block streams), kept in the process's ``matrix_cache``, sliced.
- ``Replayed``: ``rng: torch``: PyTorch's sequential stream, replayed once per plan
  (``core.torch.replay``), sliced.

Every source yields a tensor's values in storage dtype, flat C order; they concatenate to the same
bytes whatever the slicing (``block_range``), the threads or the chunking.
"""

from __future__ import annotations

import numpy as np

from . import matrix_cache, normals, streams
from .distributions import WHOLE_MAX_ELEMENTS
from .dtypes import to_storage
from .errors import SpecError


def zero_rows(t, values: np.ndarray, lo: int) -> np.ndarray:
    """Zero the elements of ``t``'s zero rows (an embedding's padding row) among ``values``, the flat
    elements ``[lo, lo + len(values))`` of the tensor in storage order (rows of the first axis)."""
    if t.spec.zero_rows:
        row = t.size // t.shape[0]
        for r in t.spec.zero_rows:
            a, b = max(r * row - lo, 0), min((r + 1) * row - lo, values.size)
            if a < b:
                values[a:b] = 0
    return values


class Source:
    """How one TensorPlan's values are produced."""

    def __init__(self, t):
        self.t = t

    def whole(self) -> np.ndarray:
        """The whole tensor, storage dtype, flat (a fresh array or a read-only shared one)."""
        raise NotImplementedError

    def blocks(self, parallel: bool = True):
        """The values block by block (views, each valid until the next is requested)."""
        whole = self.whole()
        for b in range(streams.n_blocks(self.t.size)):
            lo, hi = streams.block_bounds(self.t.size, b)
            yield whole[lo:hi]

    def block_range(self, start: int, stop: int, parallel: bool = True):
        yield self.whole()[start:stop]

    def generate(self, parallel: bool = True) -> np.ndarray:
        return np.array(self.whole(), copy=True)


class Blockwise(Source):
    def _fill_block(self, b: int, compute: np.ndarray, storage: np.ndarray | None) -> np.ndarray:
        t = self.t
        lo, hi = streams.block_bounds(t.size, b)
        buf = compute[: hi - lo]
        t.distribution.fill(streams.block_rng(t.seed, t.position, b), buf)
        zero_rows(t, buf, lo)
        if storage is None:
            return buf
        return to_storage(buf, t.dtype, storage[: hi - lo])

    def _producer(self, first_block: int = 0, clip=None):
        """``produce(i, slot)`` for ``streams.pipelined``: block ``first_block + i`` into the slot's buffers."""
        t = self.t
        per = min(t.size, streams.BLOCK_ELEMENTS)
        cast = t.dtype.storage != t.dtype.compute
        bufs: dict[int, tuple] = {}

        def produce(i, slot):
            if slot not in bufs:
                bufs[slot] = (np.empty(per, t.dtype.compute), np.empty(per, t.dtype.storage) if cast else None)
            b = first_block + i
            values = self._fill_block(b, *bufs[slot])
            return values if clip is None else clip(b, values)

        return produce

    def blocks(self, parallel: bool = True):
        yield from streams.pipelined(streams.n_blocks(self.t.size), self._producer(), parallel=parallel)

    def block_range(self, start: int, stop: int, parallel: bool = True):
        first = start // streams.BLOCK_ELEMENTS
        last = (stop - 1) // streams.BLOCK_ELEMENTS

        def clip(b, values):
            lo, _ = streams.block_bounds(self.t.size, b)
            return values[max(start - lo, 0): stop - lo]

        yield from streams.pipelined(last - first + 1, self._producer(first, clip), parallel=parallel)

    def generate(self, parallel: bool = True) -> np.ndarray:
        t = self.t
        out = np.empty(t.size, t.dtype.storage)
        cast = t.dtype.storage != t.dtype.compute

        def produce(b, slot):
            lo, hi = streams.block_bounds(t.size, b)
            if not cast:
                t.distribution.fill(streams.block_rng(t.seed, t.position, b), out[lo:hi])
                zero_rows(t, out[lo:hi], lo)
            else:
                self._fill_block(b, np.empty(hi - lo, t.dtype.compute), out[lo:hi])

        for _ in streams.pipelined(streams.n_blocks(t.size), produce, parallel=parallel):
            pass
        return out

    def whole(self) -> np.ndarray:
        return self.generate()


class WholeMatrix(Source):
    def whole(self) -> np.ndarray:
        """Drawn once per process and shared by every request and Range part (``matrix_cache``)."""
        t = self.t
        key = (t.seed, t.position, t.spec.torch_shape, t.spec.perm, t.dtype.name, repr(t.distribution))
        return matrix_cache.cache().get_or_draw(key, lambda: to_storage(self._draw(), t.dtype))

    def _draw(self) -> np.ndarray:
        """The whole tensor (compute dtype, flat, storage layout)."""
        t = self.t
        d = t.distribution
        if t.size > WHOLE_MAX_ELEMENTS:
            raise SpecError("scheme", f"{d.name} is drawn as a whole matrix and is limited to {WHOLE_MAX_ELEMENTS} "
                                      f"elements; {t.name} has {t.size}", limit="whole_matrix_elements",
                            requested=t.size, allowed=WHOLE_MAX_ELEMENTS)

        def gaussian():
            out = np.empty(t.size, np.float64)
            for b in range(streams.n_blocks(t.size)):
                lo, hi = streams.block_bounds(t.size, b)
                normals.fill(streams.block_rng(t.seed, t.position, b), out[lo:hi])
            return out

        values = d.draw(t.spec.torch_shape, gaussian, streams.extra_rng(t.seed, t.position))
        values = np.asarray(values, dtype=np.float64).reshape(t.spec.torch_shape).transpose(t.spec.perm)
        return zero_rows(t, np.ascontiguousarray(values, dtype=t.dtype.compute).reshape(-1), 0)


class Replayed(Source):
    def whole(self) -> np.ndarray:
        """The PyTorch-stream values, in the request's layout, storage dtype, flat."""
        t = self.t
        values, _ = t.replay.values(t)
        values = np.ascontiguousarray(np.asarray(values, np.float32).transpose(t.spec.perm)).reshape(-1)
        return to_storage(zero_rows(t, values.astype(t.dtype.compute), 0), t.dtype)


def stream(tensors: list, parallel: bool = True):
    """Yield ``(tensor, values)`` for the blocks of several tensors, in order, like ``blocks`` of each in
    turn, but with one prefetch pipeline across consecutive block-wise tensors of one dtype: the thread
    pool does not drain and refill at every tensor boundary (a model has hundreds).

    Values are views of reused buffers (each valid until the next is requested)."""
    i = 0
    while i < len(tensors):
        t = tensors[i]
        if not isinstance(t.source, Blockwise):
            for values in t.source.blocks(parallel=parallel):
                yield t, values
            i += 1
            continue
        j = i
        while j < len(tensors) and isinstance(tensors[j].source, Blockwise) and tensors[j].dtype == t.dtype:
            j += 1
        group = tensors[i:j]
        work = [(u, b) for u in group for b in range(streams.n_blocks(u.size))]
        per = min(max(u.size for u in group), streams.BLOCK_ELEMENTS)
        cast = t.dtype.storage != t.dtype.compute
        bufs: dict[int, tuple] = {}

        def produce(k, slot, work=work, per=per, cast=cast, bufs=bufs):
            u, b = work[k]
            if slot not in bufs:
                bufs[slot] = (np.empty(per, u.dtype.compute), np.empty(per, u.dtype.storage) if cast else None)
            return u, u.source._fill_block(b, *bufs[slot])

        yield from streams.pipelined(len(work), produce, parallel=parallel)
        i = j
