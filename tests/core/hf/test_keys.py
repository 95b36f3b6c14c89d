"""Every key a family reads, left out or null, means what it means to transformers: the same tensors
and padding row as transformers' model of that config (meta device), or, where transformers' config
refuses it (its strict dataclass types: ``bool``, ``float``, ``int`` without ``None``), a 422 naming
the key rather than a folder transformers cannot load.
"""

from __future__ import annotations

import pytest

from service.core.hf import FAMILIES
from service.document import ValidationError

from tests.helpers import problem_of

from .reference import meta_model, planned, saved_state


def _decoder(model_type: str) -> dict:
    # 64 heads: every family default of num_key_value_heads (8, 16, 32) divides them, and none is theirs
    return {"model_type": model_type, "architectures": [f"{FAMILIES[model_type].class_stem}ForCausalLM"],
            "vocab_size": 128, "hidden_size": 128, "intermediate_size": 96, "num_hidden_layers": 1,
            "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 16, "pad_token_id": 3,
            "initializer_range": 0.03, "tie_word_embeddings": False}


BASE = {
    **{t: _decoder(t) for t in ("llama", "mistral", "qwen2", "qwen3", "gemma")},
    "gpt2": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 128, "n_embd": 64,
             "n_layer": 1, "n_head": 4, "n_positions": 32, "n_inner": 96, "initializer_range": 0.03,
             "tie_word_embeddings": False},
    "bert": {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 128, "hidden_size": 64,
             "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 96, "max_position_embeddings": 32,
             "type_vocab_size": 3, "pad_token_id": 3, "initializer_range": 0.03, "tie_word_embeddings": False},
}
CASES = [(model_type, f.name, value) for model_type, family in FAMILIES.items() for f in family.fields
         if not f.required for value in ("absent", None)]


def theirs(config: dict):
    """(tensors, padding row) of transformers' model, or None when its config refuses the document."""
    try:
        model = meta_model(config)
    except Exception:  # noqa: BLE001 - a strict-dataclass error, or the TypeError of a null it takes and cannot use
        return None
    padding = model.get_input_embeddings().padding_idx
    return ([(k, tuple(v.shape)) for k, v in saved_state(model).items()],
            () if padding is None else (padding % config["vocab_size"],))


@pytest.mark.parametrize("model_type, key, value", CASES, ids=[f"{t}-{k}-{v}" for t, k, v in CASES])
def test_absent_and_null_keys_mean_what_they_mean_to_transformers(model_type, key, value):
    config = dict(BASE[model_type])
    if value == "absent":
        config.pop(key, None)
    else:
        config[key] = value
    document = {"architecture": {"hf_config": config}}
    expected = theirs(config)
    if expected is None:
        assert value is None, "transformers refuses the config without the key: so must we"
        assert problem_of(document)[:2] == (f"architecture.hf_config.{key}", "Field may not be null.")
        return
    try:
        ours, plan = planned(document)
    except ValidationError as e:
        raise AssertionError(f"refused what transformers takes: {e.messages}") from None
    assert [(name, shape) for name, shape, _ in ours] == expected[0]
    assert plan.selected[0].spec.zero_rows == expected[1]
