"""The output options (service/output/options.py): ``metadata`` and ``max_shard_size`` as the request
document gives them, and the ETag suffix they make (the defaults keep earlier ETags)."""

from __future__ import annotations

import re

import pytest

from service import document
from service.document import ValidationError, flatten_messages
from service.output.formats import NAMES
from service.output.options import DEFAULT, DEFAULT_MAX_SHARD_SIZE, MAX_SHARD_SIZE_LIMIT, TAG_SUFFIX, Options
from tests.helpers import LLAMA_TINY, MLP


@pytest.mark.parametrize("options, tags", [
    (DEFAULT, {f: f for f in (*NAMES, "plan")}),
    (Options("minimal"), {"json": "json", "npy": "npy", "npz": "npz", "safetensors": "safetensors.minimal",
                          "hf": "hf.minimal", "plan": "plan.minimal"}),
    (Options(max_shard_size=20_000), {"json": "json", "npy": "npy", "npz": "npz", "safetensors": "safetensors",
                                      "hf": "hf.shard20000", "plan": "plan.shard20000"}),
    (Options("minimal", MAX_SHARD_SIZE_LIMIT), {"safetensors": "safetensors.minimal",
                                                "hf": f"hf.minimal.shard{MAX_SHARD_SIZE_LIMIT}",
                                                "plan": f"plan.minimal.shard{MAX_SHARD_SIZE_LIMIT}"}),
])
def test_tag_names_only_the_options_a_format_reads(options, tags):
    """The plan's totals give the safetensors and hf sizes: its ETag names both options."""
    for fmt, tag in tags.items():
        assert options.tag(fmt) == tag
        assert re.fullmatch(f"({'|'.join(NAMES)}|plan){TAG_SUFFIX}", tag)  # openapi.yaml's ETag pattern


@pytest.mark.parametrize("given, metadata, size", [
    ({}, "full", DEFAULT_MAX_SHARD_SIZE),
    ({"metadata": "minimal"}, "minimal", DEFAULT_MAX_SHARD_SIZE),
    ({"max_shard_size": 1}, "full", 1),
    ({"max_shard_size": MAX_SHARD_SIZE_LIMIT}, "full", MAX_SHARD_SIZE_LIMIT),
    ({"max_shard_size": "5GB"}, "full", 5 * 10 ** 9),
    ({"max_shard_size": "50GB"}, "full", DEFAULT_MAX_SHARD_SIZE),
    ({"max_shard_size": " 500 mb "}, "full", 500 * 10 ** 6),
    ({"max_shard_size": "0.5GB"}, "full", 5 * 10 ** 8),
    ({"max_shard_size": ".25KB"}, "full", 250),
    ({"max_shard_size": "2GiB"}, "full", 2 * 2 ** 30),
    ({"max_shard_size": "1tib"}, "full", 2 ** 40),
    ({"max_shard_size": "1.5KiB"}, "full", 1536),
])
def test_the_document_sets_the_options(given, metadata, size):
    """Sizes as transformers parses save_pretrained's max_shard_size (decimal units), and binary units."""
    assert document.load_options(given) == Options(metadata, size)
    _, _, options = document.load_weights_request({**LLAMA_TINY, **given})
    assert options == Options(metadata, size)


@pytest.mark.parametrize("given, field, message", [
    ({"metadata": "none"}, "metadata", "Must be one of: full, minimal."),
    ({"metadata": 1}, "metadata", "Not a valid string."),
    ({"metadata": None}, "metadata", "Field may not be null."),
    ({"max_shard_size": 0}, "max_shard_size", f"must be between 1 and {MAX_SHARD_SIZE_LIMIT} bytes"),
    ({"max_shard_size": -5}, "max_shard_size", f"must be between 1 and {MAX_SHARD_SIZE_LIMIT} bytes"),
    ({"max_shard_size": MAX_SHARD_SIZE_LIMIT + 1}, "max_shard_size", f"must be between 1 and {MAX_SHARD_SIZE_LIMIT}"),
    ({"max_shard_size": "2PB"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "0.0001KB"}, "max_shard_size", f"must be between 1 and {MAX_SHARD_SIZE_LIMIT} bytes"),
    ({"max_shard_size": "2000TB"}, "max_shard_size", f"must be between 1 and {MAX_SHARD_SIZE_LIMIT} bytes"),
    ({"max_shard_size": True}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": 5e9}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "5"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "GB"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "-5GB"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "1e3GB"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": "9" * 40 + "GB"}, "max_shard_size", "a number and a unit"),
    ({"max_shard_size": ["5GB"]}, "max_shard_size", "a number and a unit"),
])
def test_bad_options_name_the_field_and_the_limit(given, field, message):
    for load in (document.load_options, lambda d: document.load_weights_request({**MLP, **d})):
        with pytest.raises(ValidationError) as e:
            load(given)
        errors = flatten_messages(e.value.messages)
        assert list(errors) == [field] and message in errors[field][0], errors
