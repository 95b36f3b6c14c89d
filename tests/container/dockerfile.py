"""Small readers for the container files: Dockerfile instructions and .dockerignore matching."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Instruction:
    keyword: str   # upper case: FROM, RUN, COPY, ...
    args: str      # the rest, continuation lines joined
    stage: int     # index of the build stage (0 = first FROM)

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN (HEALTHCHECK: after ``CMD``), else None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(.*)$", text, re.S)
            if not m:
                return None
            text = m.group(1)
        text = text.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def instructions(path: Path) -> list[Instruction]:
    out, stage, buf = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comments inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        full = (buf + line).strip()
        buf = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    return out


def _pattern_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore pattern syntax (Go's filepath.Match plus ``**``) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out += "(?:.*/)?"
                i += 1
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.index("]", i)
            cls = pattern[i + 1:j]
            out += "[" + ("^" + cls[1:] if cls.startswith("^") else re.escape(cls).replace("\\-", "-")) + "]"
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


class DockerIgnore:
    """Whether a context path is left out, by the rules of moby's patternmatcher: patterns in
    order, the last one matching the path or any of its parent directories decides, ``!``
    re-includes."""

    def __init__(self, text: str):
        self.patterns: list[tuple[bool, re.Pattern]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            exclusion = line.startswith("!")
            if exclusion:
                line = line[1:].strip()
            line = re.sub(r"/+", "/", line).strip("/")
            line = "/".join(p for p in line.split("/") if p not in ("", "."))
            self.patterns.append((exclusion, _pattern_regex(line)))

    def excluded(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        matched = False
        for exclusion, rx in self.patterns:
            if any(rx.match(p) for p in prefixes):
                matched = not exclusion
        return matched
