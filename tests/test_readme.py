"""README.md lists what the registries hold: every layer type, scheme, output format and Hugging Face
family has its row, and every request limit its cost row, so that adding one without documenting it
fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import load_config
from service.core import hf, layers, schemes
from service.openapi.build import FIXED_LIMITS
from service.output import formats

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def table_keys(heading: str) -> set[str]:
    """The backquoted names in the first column of the tables under ``heading`` (up to the next heading
    of the same or a higher level), split at '/' and ',' (`conv1d`/`conv2d`, `zeros`, `ones`)."""
    level = heading.split(" ")[0]
    start = README.index(heading + "\n")
    nxt = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(README, start + len(heading))
    body = README[start: nxt.start() if nxt else len(README)]
    keys = set()
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            first = line.split("|")[1]
            keys |= set(re.findall(r"`([a-z0-9_]+)`", first))
            if "`conv_transpose1d`/`2d`/`3d`" in first:
                keys |= {"conv_transpose2d", "conv_transpose3d"}
            if "`conv1d`/`conv2d`/`conv3d`" in first:
                keys |= {"conv1d", "conv2d", "conv3d"}
    return keys


@pytest.mark.parametrize("heading, names", [
    ("## The request document", layers.NAMES),
    ("## Schemes", tuple(schemes.SCHEMES)),
    ("## From a Hugging Face config", hf.MODEL_TYPES),
])
def test_every_registry_entry_has_its_readme_row(heading, names):
    assert set(names) - table_keys(heading) == set()


def test_every_format_is_described():
    section = README[README.index("## File formats\n"):]
    for f in formats.FORMATS.values():
        assert f"`{f.extension}`" in section or f"`{f.name}`" in section, f.name


def test_every_limit_has_its_cost_row():
    """The "Cost of one request" table names, in its last column, every limit a 413 can name: the
    configured ones (``Config.limits()``) and the engine's fixed ones, and no name that is not a limit (only
    limits are backquoted in that column)."""
    heading = "### Cost of one request"
    start = README.index(heading + "\n")
    body = README[start: re.compile(r"^#{1,3} ", re.MULTILINE).search(README, start + len(heading)).start()]
    named = set()
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            named |= set(re.findall(r"`([a-z0-9_]+)`", line.split("|")[-2]))
    limits = set(load_config().limits()) | set(FIXED_LIMITS)
    assert (limits - named, named - limits) == (set(), set()), "(limits without a row, names that are no limit)"
