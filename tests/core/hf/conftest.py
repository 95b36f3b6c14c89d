"""transformers logs to stderr and draws progress bars while it loads a folder: errors only here."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True, scope="session")
def quiet_transformers():
    transformers = sys.modules.get("transformers")  # imported by tests.core.hf.reference when installed
    if transformers is not None:
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
