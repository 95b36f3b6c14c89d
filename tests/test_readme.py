"""README.md lists what the registries hold: every layer type, scheme, output format and Hugging Face
family has its row, and every request limit its cost row, so that adding one without documenting it
fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service import cli
from service.config import load_config
from service.core import hf, layers, schemes
from service.openapi.build import FIXED_LIMITS
from service.output import formats
from tests.helpers import MLP, plan_of, report_of
from tests.markdown import code_blocks, section

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def table_keys(heading: str) -> set[str]:
    """The backquoted names in the first column of the tables under ``heading`` (up to the next heading
    of the same or a higher level), split at '/' and ',' (`conv1d`/`conv2d`, `zeros`, `ones`)."""
    body = section(README, heading)
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


#: Where a documented curl may write: a stated folder ($OUT, /tmp/...), nowhere, or stdout.
WRITABLE = re.compile(r'"?\$OUT\b|/tmp/|/dev/null|-$')


@pytest.mark.parametrize("doc", ["README.md", *(str(p.relative_to(ROOT))
                                                for p in sorted(ROOT.glob("examples/*/README.md")))])
def test_documented_curls_never_write_into_the_current_directory(doc):
    """Every curl -o / -D / --output of the docs' shell blocks names a stated or temporary folder, or
    its block first moves into one (`cd`): run from a clone, they leave no file in it."""
    text = (ROOT / doc).read_text()
    blocks = [b for b in code_blocks(text) if not re.search(r"^(mkdir -p \S+ && )?cd ", b, re.M)]
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    for line in lines:
        if "curl " not in line:
            continue
        for target in re.findall(r"(?:^|\s)(?:-o|-D|--output|--dump-header)\s+(\S+)", line):
            assert WRITABLE.match(target), f"{doc}: {line.strip()}"


def test_the_cli_section_says_how_to_reach_the_command_and_every_exit_status():
    body = section(README, "## Offline CLI")
    assert "`.venv/bin/weightinit`" in body and "`source .venv/bin/activate`" in body
    documented = set(re.findall(r"^\| (\d) \|", body, re.M))
    assert documented == set(re.findall(r"^  (\d)  ", cli.EXIT_STATUSES, re.M)) == {"0", "1", "2"}


def test_the_bias_default_is_documented_as_it_is_echoed():
    """An omitted `bias` is echoed as null (the fingerprint's bytes keep it so) and draws zeros: the
    README's default column says both."""
    doc = report_of(plan_of(MLP))
    assert doc["bias"] is None and doc["request"]["bias"] is None
    assert {t["scheme"]["name"] for t in doc["tensors"] if t["role"] == "bias"} == {"zeros"}
    rows = section(README, "## The request document").splitlines()
    row = next(line for line in rows if line.startswith("| `bias` |"))
    assert row.split("|")[3].strip().startswith("`null`, echoed as `null`: every bias is drawn by `zeros`")
