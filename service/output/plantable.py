"""``weightinit plan``'s default output: the plan document (``formats.document``, what ``--json`` and
``POST /v1/plan`` give) as a table a person reads, one row per tensor.

A summary line (tensors, parameters, seed, dtype, layout, bytes per format), then the columns
tensor, shape, scheme, distribution, fan_in, fan_out, bounds (``±b`` when symmetric, ``-`` when
unbounded), std and warnings (their codes), then each warning's message under the table. It reads
the document only, so the table never says more or less than the JSON.
"""

from __future__ import annotations

COLUMNS = ("tensor", "shape", "scheme", "distribution", "fan_in", "fan_out", "bounds", "std", "warnings")


def _number(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def _shape(shape: list[int]) -> str:
    return "x".join(str(n) for n in shape) if shape else "scalar"


def _bounds(bounds) -> str:
    """``-`` (unbounded), ``±b`` (symmetric), ``v`` (a constant) or ``[a, b]``."""
    if bounds is None:
        return "-"
    low, high = bounds
    if low == high:
        return _number(low)
    if low == -high:
        return f"±{_number(high)}"
    return f"[{_number(low)}, {_number(high)}]"


def row(t: dict) -> tuple[str, ...]:
    """One tensor of the plan document, as the table's cells (in ``COLUMNS`` order)."""
    return (t["name"], _shape(t["shape"]), t["scheme"]["name"], t["distribution"], _number(t["fan_in"]),
            _number(t["fan_out"]), _bounds(t["bounds"]), _number(t["std"]),
            ", ".join(w["code"] for w in t["warnings"]) or "-")


def summary(doc: dict) -> str:
    totals = doc["totals"]
    sizes = ", ".join(f"{name} {n}" for name, n in totals["bytes"].items() if n is not None)
    return (f"{totals['tensors']} tensors, {totals['parameters']} parameters; seed {doc['seed']}, {doc['dtype']}, "
            f"layout {doc['layout']}; bytes: {sizes}")


def render(doc: dict) -> str:
    """The whole text: summary, table (columns padded to their widest cell), warnings' messages."""
    rows = [COLUMNS, *(row(t) for t in doc["tensors"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [summary(doc), ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    notes = [f"  {t['name']}: {w['code']}: {w['message']}" for t in doc["tensors"] for w in t["warnings"]]
    if notes:
        lines += ["", "warnings:", *notes]
    return "\n".join(lines) + "\n"
