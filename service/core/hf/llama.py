"""``llama`` (LlamaForCausalLM, LlamaModel): q, k, v and o biases with ``attention_bias``, MLP biases
with ``mlp_bias``; lm_head untied by default."""

from .base import flag
from .decoder import Decoder


class Llama(Decoder):
    model_type = "llama"
    class_stem = "Llama"
    mlp_bias_key = "mlp_bias"
    extra_fields = (flag("attention_bias", False), flag("mlp_bias", False))
