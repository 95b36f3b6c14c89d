"""Our folder against the one transformers' ``save_pretrained`` writes for the same config, where the
values do not matter: the same files, every shard's safetensors header byte for byte (its length prefix
and JSON: names, dtypes, shapes, offsets, order, ``{"format": "pt"}``) with ``metadata: minimal``, and
model.safetensors.index.json byte for byte (total_parameters and total_size included), for
``max_shard_size`` values that make one file, several, and a tensor larger than the limit (alone in
its shard, placed before the shard being filled).
"""

from __future__ import annotations

import json
import struct

import pytest

from .configs import TINY
from .reference import seeded_model, write_folder

NAMES = ["llama gqa biases head_dim pad", "llama bfloat16", "qwen2 tied", "qwen3 biases tied", "gemma", "gpt2",
         "bert mlm untied", "bert base"]
#: One file; a few shards; the 64 KiB embedding (256 x 64 float32) larger than the limit; sizes as text
#: (huggingface_hub's parse_size_to_int takes decimal units only: KB, MB, GB, TB).
SHARD_SIZES = [50 * 10**9, 40_000, 10_000, "30KB", "0.025MB"]
#: What save_pretrained writes besides the weights for a model that can generate (not a weight file).
GENERATION_CONFIG = "generation_config.json"


def header(path) -> bytes:
    """The 8-byte length and the JSON header of a safetensors file."""
    data = path.read_bytes()
    return data[:8 + struct.unpack("<Q", data[:8])[0]]


@pytest.mark.parametrize("max_shard_size", SHARD_SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_headers_and_index_are_save_pretrained_s(name, max_shard_size, tmp_path):
    config = TINY[name]
    model = seeded_model(config, 0)
    theirs = tmp_path / "theirs"
    model.save_pretrained(theirs, max_shard_size=max_shard_size)
    ours = write_folder({"architecture": {"hf_config": config}, "metadata": "minimal",
                         "max_shard_size": max_shard_size}, tmp_path)
    their_files = {p.name for p in theirs.iterdir()}
    our_files = {p.name for p in ours.iterdir()}
    assert their_files ^ our_files == ({GENERATION_CONFIG} if model.can_generate() else set())
    weights = sorted(f for f in our_files if f.endswith(".safetensors"))
    assert len(weights) > 1 or max_shard_size == SHARD_SIZES[0]
    for f in weights:
        assert header(ours / f) == header(theirs / f), f
    if len(weights) > 1:
        index = "model.safetensors.index.json"
        assert (ours / index).read_bytes() == (theirs / index).read_bytes()


def test_a_tensor_above_the_limit_is_alone_before_the_shard_being_filled(tmp_path):
    """save_pretrained's split, which the index above pins: the embedding (first in state_dict order,
    larger than the limit) is shard 1 alone; the shard filled meanwhile comes after it."""
    config = TINY["llama"]
    folder = write_folder({"architecture": {"hf_config": config}, "max_shard_size": 10_000}, tmp_path)
    weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    first = [k for k, v in weight_map.items() if v == weight_map["model.embed_tokens.weight"]]
    assert first == ["model.embed_tokens.weight"] and weight_map[first[0]].startswith("model-00001-of-")
    assert weight_map["model.layers.0.self_attn.q_proj.weight"].startswith("model-00002-of-")
