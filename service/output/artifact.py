"""An artifact: one output file of a plan, known in length before a value is drawn, streamed in chunks.

Each encoder (``formats``) returns one. ``chunks()`` yields its bytes in pieces of at most one block,
drawn as they go, so an artifact of any size streams in bounded memory; it starts afresh on each
call. ``segments``, where every byte's value is known without the bytes before it (npy,
safetensors, hf), make ``byte_range`` possible: what HTTP Range requests and sharded fetches use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.generate import stream
from ..core.plan import Plan


@dataclass
class Artifact:
    format: str
    media_type: str
    length: int
    chunks: Callable[[], Iterator[bytes]]
    filename: str
    sha256: str | None = None   # of the whole artifact, where known before sending (JSON)
    #: The artifact as consecutive pieces, each ``bytes`` or a ``TensorPlan`` (its raw data), when
    #: every byte's value is known without the bytes before it (npy, safetensors, hf): what makes
    #: ``byte_range`` possible. None for npz (its CRCs follow the data) and JSON (built whole).
    segments: tuple | None = None

    @property
    def ranges(self) -> bool:
        return self.segments is not None

    def _spans(self):
        offset = 0
        for seg in self.segments:
            size = segment_size(seg)
            yield seg, offset, size
            offset += size

    def tensors_in(self, start: int, stop: int) -> list:
        """The tensors whose bytes overlap ``[start, stop)`` (what a Range part has to draw)."""
        if self.segments is None:
            raise ValueError(f"{self.format} artifacts cannot be cut into byte ranges")
        return [seg for seg, offset, size in self._spans()
                if not isinstance(seg, bytes) and offset < stop and start < offset + size]

    def byte_range(self, start: int, stop: int, *, parallel: bool = True) -> Iterator:
        """The artifact's bytes ``[start, stop)`` (bytes / memoryviews), drawing only the blocks
        of values that overlap the range; they equal ``b"".join(self.chunks())[start:stop]``."""
        if self.segments is None:
            raise ValueError(f"{self.format} artifacts cannot be cut into byte ranges")
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"byte range [{start}, {stop}) outside the artifact ({self.length} bytes)")
        for seg, offset, size in self._spans():
            lo, hi = max(start - offset, 0), min(stop - offset, size)
            if lo < hi:
                if isinstance(seg, bytes):
                    yield seg[lo:hi]
                else:
                    yield from _tensor_bytes(seg, lo, hi, parallel)
            if offset + size >= stop:
                return


def segment_size(seg) -> int:
    """The length of a segment: ``bytes``, or a tensor's raw data."""
    return len(seg) if isinstance(seg, bytes) else seg.nbytes


def segment_chunks(segments, parallel: bool = True) -> Iterator:
    """The bytes of ``segments`` in order: the ``bytes`` as they are, the tensors' values drawn through
    one prefetch pipeline across all of them (``core.generate.stream``: no pause at tensor boundaries,
    nor at the headers between them)."""
    tensors = [seg for seg in segments if not isinstance(seg, bytes)]
    blocks = stream(tensors, parallel)
    try:
        for seg in segments:
            if isinstance(seg, bytes):
                yield seg
                continue
            left = seg.nbytes
            while left:
                _, block = next(blocks)
                view = memoryview(block).cast("B")
                left -= len(view)
                yield view
    finally:
        blocks.close()  # a client gone mid-way: stop the prefetch pipeline now


def _tensor_bytes(t, lo: int, hi: int, parallel: bool):
    """Bytes ``[lo, hi)`` of a tensor's raw data, from the elements that cover them."""
    item = t.dtype.itemsize
    first, last = lo // item, -(-hi // item)
    skip = lo - first * item           # bytes of the first element before lo
    left = hi - lo
    for piece in t.block_range(first, last, parallel=parallel):
        view = memoryview(piece).cast("B")
        if skip:
            view, skip = view[skip:], 0
        if len(view) > left:
            view = view[:left]
        left -= len(view)
        yield view


def filename(plan: Plan, extension: str) -> str:
    return f"weightinit-seed{plan.seed}-{plan.fingerprint[:16]}{extension}"
