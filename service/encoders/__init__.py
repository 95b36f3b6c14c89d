"""Artifact encoders: one Plan -> the bytes of a .json, .npy, .npz or .safetensors file.

Each encoder knows its exact length before drawing a value (so HTTP can send
``Content-Length``) and yields its bytes in chunks of at most one block, drawn as it goes,
so an artifact of any size streams in bounded memory. The CLI and the HTTP API call the
same encoder, so their bytes are identical for the same document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.errors import SpecError
from ..core.plan import Plan

FORMATS = ("json", "npy", "npz", "safetensors")
MEDIA_TYPES = {
    "json": "application/json",
    "npy": "application/x-npy",
    "npz": "application/zip",
    "safetensors": "application/vnd.safetensors",
}
EXTENSIONS = {"json": ".json", "npy": ".npy", "npz": ".npz", "safetensors": ".safetensors"}


@dataclass
class Artifact:
    format: str
    media_type: str
    length: int
    chunks: Callable[[], Iterator[bytes]]
    filename: str
    sha256: str | None = None   # of the whole artifact, where known before sending (JSON)
    #: The artifact as consecutive pieces, each ``bytes`` or a ``TensorPlan`` (its raw data), when
    #: every byte's value is known without the bytes before it (npy, safetensors): what makes
    #: ``byte_range`` possible. None for npz (its CRCs follow the data) and JSON (built whole).
    segments: tuple | None = None

    @property
    def ranges(self) -> bool:
        return self.segments is not None

    def tensors_in(self, start: int, stop: int) -> list:
        """The tensors whose bytes overlap ``[start, stop)`` (what a Range part has to draw)."""
        if self.segments is None:
            raise ValueError(f"{self.format} artifacts cannot be cut into byte ranges")
        out, offset = [], 0
        for seg in self.segments:
            size = len(seg) if isinstance(seg, bytes) else seg.nbytes
            if not isinstance(seg, bytes) and offset < stop and start < offset + size:
                out.append(seg)
            offset += size
        return out

    def byte_range(self, start: int, stop: int, *, parallel: bool = True) -> Iterator:
        """The artifact's bytes ``[start, stop)`` (bytes / memoryviews), drawing only the blocks
        of values that overlap the range; they equal ``b"".join(self.chunks())[start:stop]``."""
        if self.segments is None:
            raise ValueError(f"{self.format} artifacts cannot be cut into byte ranges")
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"byte range [{start}, {stop}) outside the artifact ({self.length} bytes)")
        offset = 0
        for seg in self.segments:
            size = len(seg) if isinstance(seg, bytes) else seg.nbytes
            lo, hi = max(start - offset, 0), min(stop - offset, size)
            if lo < hi:
                if isinstance(seg, bytes):
                    yield seg[lo:hi]
                else:
                    yield from _tensor_bytes(seg, lo, hi, parallel)
            offset += size
            if offset >= stop:
                return


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


def filename(plan: Plan, fmt: str) -> str:
    return f"weightinit-seed{plan.seed}-{plan.fingerprint()[:16]}{EXTENSIONS[fmt]}"


def encode(plan: Plan, fmt: str, *, parallel: bool = True) -> Artifact:
    if fmt == "npy":
        from .npy import encode_npy

        return encode_npy(plan, parallel=parallel)
    if fmt == "npz":
        from .npz import encode_npz

        return encode_npz(plan, parallel=parallel)
    if fmt == "safetensors":
        from .safetensors import encode_safetensors

        return encode_safetensors(plan, parallel=parallel)
    if fmt == "json":
        from .jsonenc import encode_json

        return encode_json(plan)
    raise SpecError("format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")


def sizes(plan: Plan) -> dict:
    """Exact byte sizes of the binary artifacts (npy only for a single tensor)."""
    from .npy import npy_header
    from .npz import npz_length
    from .safetensors import safetensors_header

    t = plan.selected
    return {
        "npy": len(npy_header(t[0])) + t[0].nbytes if len(t) == 1 else None,
        "npz": npz_length(plan),
        "safetensors": 8 + len(safetensors_header(plan)) + sum(x.nbytes for x in t),
    }
