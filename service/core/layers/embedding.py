"""``embedding``: a lookup table, PyTorch's ``nn.Embedding`` (Keras ``Embedding``).

Tensor: ``weight`` (num_embeddings, embedding_dim), stored alike in both layouts. Fans follow
PyTorch (fan_in = embedding_dim, fan_out = num_embeddings), where Keras's rule would give
fan_in = num_embeddings; each embedding tensor says so in its ``fan_note``. PyTorch draws N(0, 1);
Keras U[-0.05, 0.05]. ``padding_idx`` (PyTorch's): that row is zero whatever the scheme, as
``nn.Embedding`` and transformers make it (the padding token's vector gets no gradient).
"""

from __future__ import annotations

from .. import schemes
from ..fields import MAX_DIM, Field, Integer, Rule, dim
from ..torch import modules
from .base import LayerType

FAN_NOTE = ("embedding fans follow PyTorch (fan_in = embedding_dim, fan_out = num_embeddings); "
            "Keras's rule would give fan_in = num_embeddings")


def _padding_inside(values: dict):
    p, n = values.get("padding_idx"), values.get("num_embeddings")
    if p is not None and n is not None and p >= n:
        return "padding_idx", f"padding_idx ({p}) must be below num_embeddings ({n})"
    return None


class Embedding(LayerType):
    name = "embedding"
    example = {"num_embeddings": 100, "embedding_dim": 16, "padding_idx": 0}
    fields = (dim("num_embeddings"), dim("embedding_dim"),
              Field("padding_idx", Integer(0, MAX_DIM - 1), doc="the row that is zero (PyTorch's padding_idx)"))
    rules = (Rule(_padding_inside, "padding_idx is a row of the table"),)
    component = "EmbeddingLayer"
    summary = ("A lookup table (PyTorch nn.Embedding): weight (num_embeddings, embedding_dim) in both layouts, no "
               "bias; its fans follow PyTorch (fan_in = embedding_dim), as the tensor's `fan_note` says.")

    def tensors(self, layer, layout, with_bias):
        n, d = layer.params["num_embeddings"], layer.params["embedding_dim"]
        pad = layer.params.get("padding_idx")
        return [self.tensor(layer, "weight", "weight", (n, d), layout, permute=False, fan_note=FAN_NOTE,
                            zero_rows=() if pad is None else (pad,))]

    def torch_default(self, t):
        return schemes.spec("normal"), "PyTorch Embedding: N(0, 1)"

    def keras_default(self, t):
        return schemes.spec("uniform", low=-0.05, high=0.05), "Keras Embedding: U[-0.05, 0.05]"

    def torch_construct(self, gen, layer, with_bias):
        return modules.embedding(gen, layer.params["num_embeddings"], layer.params["embedding_dim"],
                                 padding_idx=layer.params.get("padding_idx"))
