"""``gpt2`` (GPT2LMHeadModel, GPT2Model): token and position embeddings (``wte``, ``wpe``), per block
LayerNorm, attention and MLP made of transformers' ``Conv1D`` (weights stored (in, out): layer type
``hf_conv1d``), a final LayerNorm; the LM head is tied to ``wte`` by default.

Under ``hf_default`` every Conv1D weight draws N(0, initializer_range^2) (GPT2PreTrainedModel's
_init_weights; the base class's leaves Conv1D alone), and the two residual projections of each block
(``attn.c_proj``, ``mlp.c_proj``) N(0, (initializer_range / sqrt(2 n_layer))^2): GPT-2's scaled
initialization, which transformers applies after the plain draw. GPT-2 reads initializer_range as
given there (0.0 draws zeros), not ``or 0.02`` as for its embeddings and an untied lm_head.
"""

import math

from .base import Builder, Family, blocks, divides, initializer_range, size, tie_word_embeddings

LM, BASE = "lm", "base"


class GPT2(Family):
    model_type = "gpt2"
    blocks_key, width_key = "n_layer", "n_embd"
    heads = {"GPT2LMHeadModel": LM, "GPT2Model": BASE}
    base = "GPT2Model"
    tie_default = True
    #: GPT2Config's attribute_map: the generic names transformers also accepts.
    aliases = {"hidden_size": "n_embd", "max_position_embeddings": "n_positions", "num_attention_heads": "n_head",
               "num_hidden_layers": "n_layer"}
    fields = (size("vocab_size"), size("n_positions"), size("n_embd"), blocks("n_layer"), size("n_head"),
              size("n_inner", required=False, nullable=True,
                   doc="the MLP's width; default 4 * n_embd (absent or null)"),
              initializer_range(), tie_word_embeddings(True))
    rules = (divides("n_head", "n_embd", what="GPT2Attention splits n_embd into n_head heads"),)

    def build(self, v: dict, head: str):
        e, n = v["n_embd"], v["n_layer"]
        inner = v.get("n_inner") or 4 * e
        r = v.get("initializer_range")
        conv = {"range": r, "as_given": True, "why": "GPT2PreTrainedModel._init_weights draws every Conv1D"}
        scaled = {**conv, "factor": 1 / math.sqrt(2 * n), "factor_text": f"1/sqrt(2 n_layer), n_layer {n}",
                  "why": "GPT2PreTrainedModel._init_weights, the scaled residual projection"}
        b = Builder("transformer." if head == LM else "", init={"range": r})
        b.add("wte", "embedding", "embedding", num_embeddings=v["vocab_size"], embedding_dim=e)
        b.add("wpe", "embedding", "position_embedding", num_embeddings=v["n_positions"], embedding_dim=e)
        for i in range(n):
            p = f"h.{i}."
            b.add(p + "ln_1", "layernorm", "norm", normalized_shape=e)
            b.add(p + "attn.c_attn", "hf_conv1d", "attn_qkv", init=conv, in_features=e, out_features=3 * e)
            b.add(p + "attn.c_proj", "hf_conv1d", "attn_out", init=scaled, in_features=e, out_features=e)
            b.add(p + "ln_2", "layernorm", "norm", normalized_shape=e)
            b.add(p + "mlp.c_fc", "hf_conv1d", "mlp_in", init=conv, in_features=e, out_features=inner)
            b.add(p + "mlp.c_proj", "hf_conv1d", "mlp_out", init=scaled, in_features=inner, out_features=e)
        b.add("ln_f", "layernorm", "norm", normalized_shape=e)
        if head != LM:
            return b.layers, ()
        return self.with_lm_head(b, v, e)
