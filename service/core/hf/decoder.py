"""The decoder-only transformer the Llama-like families share: the token embedding, per block an
attention (q, k, v, o projections; grouped-query: k and v have ``num_key_value_heads * head_dim``
rows) and a gated MLP (gate, up, down) with two RMSNorms, a final RMSNorm, and an ``lm_head`` unless
it is tied. ``*ForCausalLM`` prefixes the base model's names with ``model.``.

Each family file (llama, mistral, qwen2, qwen3, gemma) says which biases it has, whether it has q/k
norms, its defaults for ``head_dim``, ``num_key_value_heads``, ``pad_token_id`` and
``tie_word_embeddings`` (transformers' config classes differ), and whether its RMSNorm starts at 0.
"""

from __future__ import annotations

from ..layers.base import TRANSFORMERS
from .base import (Builder, Family, blocks, divides, initializer_range, pad_inside, pad_token_id, padding_row, size,
                   tie_word_embeddings)

#: The kinds of head: a causal LM (``model.`` prefix, an lm_head) or the base model.
CAUSAL_LM, BASE = "causal_lm", "base"


class Decoder(Family):
    #: The class-name stem of the family's heads: "Llama" -> LlamaForCausalLM, LlamaModel.
    class_stem = ""
    #: Which projections have biases, and the config key that switches them on (None: always, if any).
    attention_biases: str = "qkvo"          # "qkvo", "qkv" (Qwen2) or "" (none)
    attention_bias_key: str | None = "attention_bias"
    mlp_bias_key: str | None = None
    qk_norm: bool = False
    #: Gemma's RMSNorm computes x * (1 + w): its w starts at 0, not 1.
    norm_zero: bool = False
    #: transformers' defaults of the family's config class (they differ from family to family), and
    #: whether it takes null for the key (null: one k/v head per head; hidden_size // num_attention_heads).
    kv_default: int | None = None           # None: num_attention_heads
    kv_nullable: bool = True
    head_dim_default: int | None = None     # None: hidden_size // num_attention_heads
    head_dim_nullable: bool = True
    pad_default: int | None = None
    tie_default: bool = False
    #: The family's own keys, after the ones every decoder reads, and its own rules.
    extra_fields: tuple = ()
    extra_rules: tuple = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.heads = {f"{cls.class_stem}ForCausalLM": CAUSAL_LM, f"{cls.class_stem}Model": BASE}
        cls.base = f"{cls.class_stem}Model"
        cls.fields = _fields(cls)
        cls.rules = RULES + cls.extra_rules

    def build(self, v: dict, head: str):
        hidden, heads, inter = v["hidden_size"], v["num_attention_heads"], v["intermediate_size"]
        # An absent key has its family default (the field's); null, where the config takes it, means
        # what the config's __post_init__ makes of it.
        kv = v.get("num_key_value_heads") or heads
        hd = v.get("head_dim") or hidden // heads
        switched = bool(v.get(self.attention_bias_key)) if self.attention_bias_key else True
        qkv_bias = None if "q" in self.attention_biases and switched else False
        o_bias = None if "o" in self.attention_biases and switched else False
        mlp_bias = None if self.mlp_bias_key and v.get(self.mlp_bias_key) else False
        norm_init = ({"value": 0.0, "why": f"{self.model_type}'s RMSNorm scales by (1 + w): transformers "
                                            f"{TRANSFORMERS} starts w at 0"} if self.norm_zero else None)
        b = Builder("model." if head == CAUSAL_LM else "", init={"range": v.get("initializer_range")})
        emb = {"num_embeddings": v["vocab_size"], "embedding_dim": hidden}
        pad = padding_row(v)
        if pad is not None:
            emb["padding_idx"] = pad
        b.add("embed_tokens", "embedding", "embedding", **emb)
        for i in range(v["num_hidden_layers"]):
            p = f"layers.{i}."
            b.add(p + "self_attn.q_proj", "dense", "attn_qkv", bias=qkv_bias, in_features=hidden, out_features=heads * hd)
            b.add(p + "self_attn.k_proj", "dense", "attn_qkv", bias=qkv_bias, in_features=hidden, out_features=kv * hd)
            b.add(p + "self_attn.v_proj", "dense", "attn_v", bias=qkv_bias, in_features=hidden, out_features=kv * hd)
            b.add(p + "self_attn.o_proj", "dense", "attn_out", bias=o_bias, in_features=heads * hd, out_features=hidden)
            if self.qk_norm:
                b.add(p + "self_attn.q_norm", "rmsnorm", "norm", init=norm_init, normalized_shape=hd)
                b.add(p + "self_attn.k_norm", "rmsnorm", "norm", init=norm_init, normalized_shape=hd)
            b.add(p + "mlp.gate_proj", "dense", "mlp_in", bias=mlp_bias, in_features=hidden, out_features=inter)
            b.add(p + "mlp.up_proj", "dense", "mlp_in", bias=mlp_bias, in_features=hidden, out_features=inter)
            b.add(p + "mlp.down_proj", "dense", "mlp_out", bias=mlp_bias, in_features=inter, out_features=hidden)
            b.add(p + "input_layernorm", "rmsnorm", "norm", init=norm_init, normalized_shape=hidden)
            b.add(p + "post_attention_layernorm", "rmsnorm", "norm", init=norm_init, normalized_shape=hidden)
        b.add("norm", "rmsnorm", "norm", init=norm_init, normalized_shape=hidden)
        if head != CAUSAL_LM:
            return b.layers, ()
        return self.with_lm_head(b, v, hidden)


def _fields(f: type[Decoder]) -> tuple:
    """The keys every decoder family reads, with the family's transformers defaults, then its own."""
    return (
        size("vocab_size"), size("hidden_size"), size("intermediate_size"), blocks("num_hidden_layers"),
        size("num_attention_heads"),
        size("num_key_value_heads", required=False, default=f.kv_default, nullable=f.kv_nullable,
             doc="k and v heads (grouped-query attention); " + _default(f.kv_default, f.kv_nullable,
                                                                        "num_attention_heads")),
        size("head_dim", required=False, default=f.head_dim_default, nullable=f.head_dim_nullable,
             doc=_default(f.head_dim_default, f.head_dim_nullable, "hidden_size // num_attention_heads")),
        pad_token_id(f.pad_default), initializer_range(), tie_word_embeddings(f.tie_default), *f.extra_fields,
    )


def _default(default: int | None, nullable: bool, otherwise: str) -> str:
    """What an absent (and a null) key means."""
    if default is None:
        return f"default {otherwise}{' (absent or null)' if nullable else ''}"
    return f"default {default}{f'; null: {otherwise}' if nullable else ''}"


#: The rules every decoder family checks (transformers' repeat_kv needs whole groups).
RULES = (divides("num_key_value_heads", "num_attention_heads", what="each k/v head serves a whole group of q heads"),
         pad_inside())
