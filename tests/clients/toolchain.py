"""The client examples' toolchains: found on PATH (or where else the caller says), else the test
skips with the reason on a developer's machine and FAILS under CI, where scripts/test-deps.sh
installs every one of them (so a missing toolchain there is a broken setup, not an excuse)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require(command: str, why: str, *elsewhere: Path) -> str:
    """The path of ``command``: on PATH, else the first of ``elsewhere`` that is a file.

    Missing: ``pytest.fail`` when the ``CI`` environment variable is set, ``pytest.skip`` otherwise,
    both saying which example cannot be tested and what installs the tool."""
    found = shutil.which(command) or next((str(p) for p in elsewhere if p.is_file()), None)
    if found:
        return found
    reason = f"{command} is not installed: {why} (scripts/test-deps.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)
