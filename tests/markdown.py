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
    nxt = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(text, start + len(heading))
    return text[start: nxt.start() if nxt else len(text)]
