"""The fenced code blocks of a Markdown file, for tests that check or run what the docs print."""

from __future__ import annotations

import re

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def code_blocks(text: str, lang: str = "sh") -> list[str]:
    """Every block fenced as ```lang, in order, without its fences."""
    return [body for tag, body in _FENCE.findall(text) if tag == lang]


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole line, e.g. "## Quick start") up to the next heading of the
    same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    fenced = [m.span() for m in _FENCE.finditer(text)]  # a shell comment in a block is no heading
    for nxt in re.compile(rf"^#{{1,{len(level)}}} ", re.M).finditer(text, start + len(heading)):
        if not any(a <= nxt.start() < b for a, b in fenced):
            return text[start: nxt.start()]
    return text[start:]
