"""JSON: the report plus, per tensor, ``values`` (nested lists), ``empirical`` and ``sha256``.

Floats are printed with the shortest text that parses back to the same value *in the
tensor's dtype*: orjson does this natively for float32 and float64 (35x faster than
``json.dumps(a.tolist())``). For float16 and bfloat16 orjson would print the float32 value
(0.099975586 for the float16 nearest 0.1), so ``shortest_decimal`` first finds, per value,
the fewest significant digits k (1..5) whose decimal rounds back to the same 16-bit value,
and hands orjson the float64 nearest that decimal, which it prints with at most k digits.
"""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import orjson

from ..core.dtypes import DType
from . import floattext
from .artifact import Artifact, filename
from .report import Report, empirical, sha256_of

MEDIA_TYPE = "application/json"
EXTENSION = ".json"

_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _f64_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float64 -> bfloat16 bits with one correct rounding (nearest, ties to even)."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    # bfloat16 keeps 7 of float64's 52 fraction bits: round away the low 45.
    rounded = (bits + (np.uint64((1 << 44) - 1) + ((bits >> np.uint64(45)) & np.uint64(1)))) & ~np.uint64((1 << 45) - 1)
    y = rounded.view(np.float64)
    # Below float32's smallest normal, bfloat16 is subnormal with a fixed spacing of 2^-133.
    tiny = np.abs(x) < 2.0 ** -126
    if tiny.any():
        y = np.where(tiny, np.rint(x * 2.0 ** 133) * 2.0 ** -133, y)
    return (y.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)


def shortest_decimal(stored: np.ndarray, dtype: DType) -> np.ndarray:
    """float64 values whose shortest repr is the shortest decimal that round-trips in ``dtype``."""
    if dtype.name == "bfloat16":
        exact = (stored.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
        back = _f64_to_bf16_bits
        target = stored
        digits = 4
    else:
        exact = stored.astype(np.float64)
        back = lambda c: c.astype(np.float16).view(np.uint16)  # numpy rounds float64 -> float16 once, correctly
        target = stored.view(np.uint16)
        digits = 5
    out = exact.copy()
    todo = np.flatnonzero(exact != 0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for k in range(1, digits + 1):
            if not todo.size:
                break
            v = exact[todo]
            e = np.floor(np.log10(np.abs(v))).astype(np.int64)
            p = (k - 1) - e
            scale = np.power(10.0, np.abs(p))
            m = np.where(p >= 0, np.rint(v * scale), np.rint(v / scale))
            cand = np.where(p >= 0, m / scale, m * scale)
            # 10^|p| is exact in float64 only up to 10^22; beyond, parse the decimal exactly.
            far = np.flatnonzero(np.abs(p) > 22)
            for i in far:
                cand[i] = float(f"{int(m[i])}e{-int(p[i])}")
            ok = back(cand) == target[todo]
            out[todo[ok]] = cand[ok]
            todo = todo[~ok]
    return out


def values_for_json(stored: np.ndarray, dtype: DType) -> np.ndarray:
    if dtype.name in ("float16", "bfloat16"):
        return shortest_decimal(stored.reshape(-1), dtype).reshape(stored.shape)
    return stored


def document_with_values(report: Report, document: dict) -> dict:
    """``document`` (the report with its totals) with every tensor's values, statistics and sha256."""
    doc = document
    for entry, t in zip(doc["tensors"], report.plan.selected):
        stored = t.generate()
        _describe(entry, t, stored)
        entry["values"] = values_for_json(stored, t.dtype)
    return doc


def _describe(entry: dict, t, stored: np.ndarray) -> None:
    """A tensor entry's measured fields, in the document's key order (``values`` comes after)."""
    entry["empirical"] = empirical(t, stored)
    entry["sha256"] = sha256_of(stored)
    if t.replay is not None:  # rng torch: the measured exactness replaces the prediction
        entry["exact"] = bool(t.replay.values(t)[1])


def encode(report: Report, document: dict) -> Artifact:
    """The JSON document: ``orjson.dumps(document_with_values(report, document))``, byte for byte, where
    ``document`` is the report with its totals (``formats.document``).

    Large float32 tensors are printed by ``floattext`` (C, without the GIL, on the engine's
    threads) while this thread computes their statistics and hashes; the document around the
    values comes from orjson with a marker where each tensor's values go. The body is a list
    of pieces (bytes and memoryviews), never joined: ~12 MB of text per 1M values."""
    plan = report.plan
    tensors = plan.selected
    if not any(t.dtype.name == "float32" and floattext.applies_to_size(t.size) for t in tensors):
        body = orjson.dumps(document_with_values(report, document), option=_OPTS)
        return Artifact("json", MEDIA_TYPE, len(body), lambda: iter((body,)), filename(plan, EXTENSION),
                        hashlib.sha256(body).hexdigest())
    doc = document
    marker = "weightinit-values-" + secrets.token_hex(16)
    printing = []
    for entry, t in zip(doc["tensors"], tensors):
        stored = t.generate()
        printing.append(floattext.submit(values_for_json(stored, t.dtype)))
        _describe(entry, t, stored)  # while the values are printed
        entry["values"] = marker
    parts = orjson.dumps(doc, option=_OPTS).split(b'"' + marker.encode() + b'"')
    if len(parts) != len(tensors) + 1:
        raise RuntimeError("JSON skeleton: a values marker went missing or appeared twice")
    body = [parts[0]]
    digest = hashlib.sha256(parts[0])
    for pieces, part in zip(printing, parts[1:]):
        for piece in pieces():  # hashed as each slice arrives, while the next ones are printed
            body.append(piece)
            digest.update(piece)
        body.append(part)
        digest.update(part)
    length = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in body)
    return Artifact("json", MEDIA_TYPE, length, lambda: iter(body), filename(plan, EXTENSION), digest.hexdigest())
