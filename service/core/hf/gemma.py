"""``gemma`` (GemmaForCausalLM, GemmaModel): biases on q, k, v and o with ``attention_bias``; its
RMSNorm computes ``x * (1 + w)``, so w starts at 0 under every scheme; GemmaConfig's defaults when
absent: ``head_dim`` 256, ``num_key_value_heads`` 16 (neither may be null), ``pad_token_id`` 0, lm_head tied."""

from .base import flag
from .decoder import Decoder


class Gemma(Decoder):
    model_type = "gemma"
    class_stem = "Gemma"
    norm_zero = True
    kv_default = 16
    kv_nullable = False
    head_dim_default = 256
    head_dim_nullable = False
    pad_default = 0
    tie_default = True
    extra_fields = (flag("attention_bias", False),)
