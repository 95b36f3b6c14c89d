"""``qwen3`` (Qwen3ForCausalLM, Qwen3Model): RMSNorms on q and k over ``head_dim`` (q_norm, k_norm);
biases on q, k, v and o with ``attention_bias``; ``head_dim`` 128 and ``num_key_value_heads`` 32 when
absent (Qwen3Config's defaults; null ``num_key_value_heads``: one per head, null ``head_dim``: refused
as Qwen3Config refuses it)."""

from .base import flag
from .decoder import Decoder


class Qwen3(Decoder):
    model_type = "qwen3"
    class_stem = "Qwen3"
    qk_norm = True
    kv_default = 32
    head_dim_default = 128
    head_dim_nullable = False
    extra_fields = (flag("attention_bias", False),)
