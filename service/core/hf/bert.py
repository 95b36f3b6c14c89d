"""``bert`` (BertModel, BertForMaskedLM): word, position and token-type embeddings and their
LayerNorm; per layer self-attention (query, key, value), its output dense + LayerNorm, the
intermediate dense, the output dense + LayerNorm; BertModel adds the pooler. BertForMaskedLM prefixes
the encoder with ``bert.`` (no pooler) and adds the prediction head: ``cls.predictions.bias``, the
transform (dense + LayerNorm) and the decoder, whose weight is tied to the word embeddings and whose
bias is ``cls.predictions.bias`` unless ``tie_word_embeddings`` is false.

``cls.predictions.bias`` is zero under every scheme: transformers' _init_weights zeros it, and it is
the decoder's bias (a bias, which no weight scheme draws).
"""

from ..layers.base import TRANSFORMERS
from .base import (Builder, Family, blocks, divides, initializer_range, pad_inside, pad_token_id, padding_row, size,
                   tie_word_embeddings)

MLM, BASE = "masked_lm", "base"


class Bert(Family):
    model_type = "bert"
    heads = {"BertForMaskedLM": MLM, "BertModel": BASE}
    base = "BertModel"
    tie_default = True
    fields = (size("vocab_size"), size("hidden_size"), blocks("num_hidden_layers"), size("num_attention_heads"),
              size("intermediate_size"), size("max_position_embeddings"),
              size("type_vocab_size", required=False, default=2, doc="token types (segments); default 2"),
              pad_token_id(0), initializer_range(), tie_word_embeddings(True))
    rules = (divides("num_attention_heads", "hidden_size", what="BertSelfAttention splits hidden_size into heads"),
             pad_inside())

    def build(self, v: dict, head: str):
        h, inter = v["hidden_size"], v["intermediate_size"]
        b = Builder("bert." if head == MLM else "", init={"range": v.get("initializer_range")})
        words = {"num_embeddings": v["vocab_size"], "embedding_dim": h}
        pad = padding_row(v)
        if pad is not None:
            words["padding_idx"] = pad
        b.add("embeddings.word_embeddings", "embedding", "embedding", **words)
        b.add("embeddings.position_embeddings", "embedding", "position_embedding",
              num_embeddings=v["max_position_embeddings"], embedding_dim=h)
        b.add("embeddings.token_type_embeddings", "embedding", "token_type_embedding", num_embeddings=v["type_vocab_size"],
              embedding_dim=h)
        b.add("embeddings.LayerNorm", "layernorm", "norm", normalized_shape=h)
        for i in range(v["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            for name, role in (("query", "attn_qkv"), ("key", "attn_qkv"), ("value", "attn_v")):
                b.add(p + "attention.self." + name, "dense", role, in_features=h, out_features=h)
            b.add(p + "attention.output.dense", "dense", "attn_out", in_features=h, out_features=h)
            b.add(p + "attention.output.LayerNorm", "layernorm", "norm", normalized_shape=h)
            b.add(p + "intermediate.dense", "dense", "mlp_in", in_features=h, out_features=inter)
            b.add(p + "output.dense", "dense", "mlp_out", in_features=inter, out_features=h)
            b.add(p + "output.LayerNorm", "layernorm", "norm", normalized_shape=h)
        if head == BASE:
            b.add("pooler.dense", "dense", "pooler", in_features=h, out_features=h)
            return b.layers, ()
        b.prefix = "cls.predictions."
        b.add("bias", "tensor", "readout", init={"value": 0.0, "why": f"BertLMPredictionHead's bias (the decoder's): transformers "
                                                          f"{TRANSFORMERS} _init_weights zeros it"},
              shape=[v["vocab_size"]])
        b.add("transform.dense", "dense", "hidden", in_features=h, out_features=h)
        b.add("transform.LayerNorm", "layernorm", "norm", normalized_shape=h)
        if self.tied(v):
            return b.layers, ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
        b.add("decoder", "dense", "readout", in_features=h, out_features=v["vocab_size"])
        return b.layers, ()
