"""``llama`` (LlamaForCausalLM, LlamaModel): q, k, v and o biases with ``attention_bias``, MLP biases
with ``mlp_bias``; lm_head untied by default. LlamaConfig refuses a ``hidden_size`` that is no multiple
of ``num_attention_heads``, even with ``head_dim`` given: so does this family."""

from .base import divides, flag
from .decoder import Decoder


class Llama(Decoder):
    model_type = "llama"
    class_stem = "Llama"
    mlp_bias_key = "mlp_bias"
    extra_fields = (flag("attention_bias", False), flag("mlp_bias", False))
    extra_rules = (divides("num_attention_heads", "hidden_size", what="LlamaConfig.validate_architecture requires it"),)
