"""Tiny configs of every family and head, written as ``weightinit generate REQUEST.json -o DIR/`` writes
the folder, loaded by transformers' ``from_pretrained``: nothing missing, unexpected or mismatched, the
tensors loaded are the bytes written, and a forward pass on random tokens gives the loss of a fresh
model, about ln(vocab_size) (every token about equally likely).
"""

from __future__ import annotations

import math

import pytest
from safetensors.torch import load_file

from service.core.hf import FAMILIES, config_dtype

from .configs import TINY
from .reference import model_class, torch, write_folder

#: Documents whose folder is sharded (the request's max_shard_size, bytes), the rest one model.safetensors.
SHARDED = {"llama gqa biases head_dim pad": 40_000, "gpt2": 50_000, "bert mlm untied": 30_000}
#: A fresh model's loss is ln(vocab) within this fraction.
LOSS_TOLERANCE = 0.10


def load(folder, config):
    model, info = model_class(config).from_pretrained(folder, output_loading_info=True)
    return model.eval(), info


@pytest.mark.parametrize("name", TINY)
def test_from_pretrained_loads_our_folder(name, tmp_path):
    config = TINY[name]
    document = {"architecture": {"hf_config": config}, "seed": 11, "metadata": "minimal"}
    if name in SHARDED:
        document["max_shard_size"] = SHARDED[name]
    folder = write_folder(document, tmp_path)
    assert ((folder / "model.safetensors.index.json").exists()) == (name in SHARDED)
    model, info = load(folder, config)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}

    # what was loaded is what we wrote, byte for byte, in the config's dtype (float32 when it names none)
    written = {}
    for shard in sorted(folder.glob("*.safetensors")):
        written.update(load_file(shard))
    state = model.state_dict()
    assert {str(t.dtype) for t in written.values()} == {f"torch.{config_dtype(config) or 'float32'}"}
    for key, tensor in written.items():
        assert state[key].dtype == tensor.dtype and torch.equal(state[key], tensor), key

    # a forward pass on random tokens: the loss of a fresh model
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(0, config["vocab_size"], (2, 32), generator=generator)
    with torch.no_grad():
        if config["architectures"][0] == FAMILIES[config["model_type"]].base:  # no head: no loss
            out = model(input_ids=ids)
            assert torch.isfinite(out.last_hidden_state).all()
            return
        loss = float(model(input_ids=ids, labels=ids).loss)
    assert loss == pytest.approx(math.log(config["vocab_size"]), rel=LOSS_TOLERANCE)
