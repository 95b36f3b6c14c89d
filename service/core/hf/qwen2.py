"""``qwen2`` (Qwen2ForCausalLM, Qwen2Model): q, k and v always have biases, o never; no MLP biases;
``num_key_value_heads`` 32 when absent (Qwen2Config's default), null: one per head; ``head_dim`` is no
Qwen2Config key, but Qwen2Attention honours it when given (null would break it)."""

from .decoder import Decoder


class Qwen2(Decoder):
    model_type = "qwen2"
    class_stem = "Qwen2"
    attention_biases = "qkv"
    attention_bias_key = None
    kv_default = 32
    head_dim_nullable = False
