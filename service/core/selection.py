"""``tensors``: the tensors a request selects, by exact name or shell-style glob pattern.

Patterns are deduplicated, exact names are looked up in a set, and each glob is compiled once.
Globs are tried against every tensor name, so their cost is (tensors) x (characters of the
distinct globs): bounded by ``MAX_PATTERN_WORK`` (fixed; 413 ``max_pattern_work``), about half
a second of matching here. 1,024 patterns of 200 characters against a 500-layer model would
otherwise take some 18 s.
"""

from __future__ import annotations

import fnmatch
import re

from .errors import SpecError

GLOB_CHARACTERS = frozenset("*?[")
#: Most (tensors x characters of the distinct glob patterns) one request may ask to match.
MAX_PATTERN_WORK = 1 << 25


def select(names: list[str], patterns: list[str]) -> set[str]:
    """The names that match at least one pattern; SpecError for a pattern that matches none (named by
    its first position in ``patterns``) or when the globs' matching work exceeds ``MAX_PATTERN_WORK``."""
    first = {}
    for k, p in enumerate(patterns):
        first.setdefault(p, k)
    globs = [p for p in first if GLOB_CHARACTERS.intersection(p)]
    work = len(names) * sum(len(p) for p in globs)
    if work > MAX_PATTERN_WORK:
        raise SpecError("tensors", f"{len(globs)} glob pattern(s) of {sum(len(p) for p in globs)} characters against "
                                   f"{len(names)} tensors is {work:,} units of matching work; at most "
                                   f"max_pattern_work = {MAX_PATTERN_WORK:,} are allowed (use exact names, or fewer "
                                   "or shorter patterns)", limit="max_pattern_work", requested=work,
                        allowed=MAX_PATTERN_WORK)
    known = set(names)
    selected: set[str] = set()
    for p, k in first.items():
        if p in globs:
            match = re.compile(fnmatch.translate(p)).match
            hits = [n for n in names if match(n)]
        else:
            hits = [p] if p in known else []
        if not hits:
            raise SpecError(f"tensors.{k}", f"{p!r} matches no tensor (tensors: {', '.join(names[:20])}"
                                            f"{', ...' if len(names) > 20 else ''})")
        selected.update(hits)
    return selected
