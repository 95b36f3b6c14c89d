"""Hugging Face model families: a ``config.json`` object (``architecture.hf_config``) becomes the
layers transformers' ``save_pretrained`` writes for it. One file per family; this registry is what
the boundary, the OpenAPI document and the README's table read.
"""

from __future__ import annotations

from ..dtypes import DTYPES
from .base import MAX_BLOCKS, TRANSFORMERS, Family, HFModel
from .bert import Bert
from .gemma import Gemma
from .gpt2 import GPT2
from .llama import Llama
from .mistral import Mistral
from .qwen2 import Qwen2
from .qwen3 import Qwen3

FAMILIES: dict[str, Family] = {f.model_type: f for f in (Llama(), Mistral(), Qwen2(), Qwen3(), Gemma(), GPT2(), Bert())}
MODEL_TYPES: tuple[str, ...] = tuple(FAMILIES)
#: The config keys that name the checkpoint's dtype (transformers 5 writes ``dtype``, 4 ``torch_dtype``).
DTYPE_KEYS = ("dtype", "torch_dtype")


def config_dtype(config: dict) -> str | None:
    """The dtype the config names (``dtype``, else ``torch_dtype``), or None."""
    for key in DTYPE_KEYS:
        if isinstance(config.get(key), str):
            return config[key]
    return None


def model(family: Family, architecture: str, config: dict, values: dict) -> HFModel:
    """The model a validated config describes: ``values`` are the family's keys, validated, defaults
    filled; ``architecture`` one of ``family.heads``."""
    layers, tied = family.build(values, family.heads[architecture])
    dtype = config_dtype(config)
    return HFModel(family.model_type, architecture, config, tuple(layers), tied,
                   dtype if dtype in DTYPES else None, blocks=values[family.blocks_key],
                   width=values[family.width_key])


def saved_config(m: HFModel, dtype: str) -> dict:
    """The config.json of the folder: the request's config, its dtype keys saying the tensors' dtype
    (``dtype`` added when it names none), ``architectures`` naming the class when it is absent."""
    out = dict(m.config)
    named = [k for k in DTYPE_KEYS if k in out]
    for key in named or ("dtype",):
        out[key] = dtype
    out.setdefault("architectures", [m.architecture])
    return out


__all__ = ["FAMILIES", "MODEL_TYPES", "Family", "HFModel", "model", "config_dtype", "saved_config", "MAX_BLOCKS",
           "TRANSFORMERS", "DTYPE_KEYS"]
