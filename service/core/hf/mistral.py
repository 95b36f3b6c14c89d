"""``mistral`` (MistralForCausalLM, MistralModel): no biases; ``num_key_value_heads`` 8 when absent
(MistralConfig's default; it takes no null); ``head_dim`` honoured when given."""

from .decoder import Decoder


class Mistral(Decoder):
    model_type = "mistral"
    class_stem = "Mistral"
    attention_biases = ""
    attention_bias_key = None
    kv_default = 8
    kv_nullable = False
