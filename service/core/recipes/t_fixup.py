"""``t_fixup``: T-Fixup (Huang, Perez, Ba & Volkovs 2020, Improving Transformer Optimization Through Better
Initialization, Algorithm 2): transformers trained without layer normalization and without warmup.

    W ~ Xavier (xavier_uniform, gain 1)              every weight but the input embeddings
    E ~ N(0, d^-1)  (std d^-1/2)                     input embeddings (d: the embedding dimension)
    v, w (attn_v, attn_out), MLP (mlp_in, mlp_out)   x 0.67 N^(-1/4) in the encoder (N encoder layers)
                                                     x (9M)^(-1/4) in the decoder (M decoder layers)
    E                                                x (9N)^(-1/4) in the encoder, x (9M)^(-1/4) in the decoder
    b = 0

Why: without layer normalization and warmup, Adam's early updates are largest where the gradients through
the attention's softmax are; bounding the change of the output per update by Theta(eta) gives these scales
for the value (v), output (w) and MLP weights and for the embeddings, the paths that carry the signal
(q and k only shape the softmax and keep Xavier) (T-Fixup section 3.2, Algorithm 2). The paper writes
the embedding init N(0, d^-1/2) as a std (its code draws std d^-1/2, fairseq's Embedding) and scales
both stacks' embeddings by (9N)^(-1/4) with as many encoder as decoder layers; its code
(layer6ai-labs/T-Fixup, fairseq/models/transformer.py) scales each stack's by its own depth, as here.

``convention: "authors"`` follows the rest of that code: fairseq's MultiheadAttention keeps q and k at
xavier_uniform with gain 1/sqrt(2) (the code multiplies only v by sqrt(2) back to gain 1 before scaling
it), and an untied output projection is N(0, d^-1) (std d^-1/2) rather than Xavier.
"""

from __future__ import annotations

import math

from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use
from .stacks import params, scaled, stacks, transformer_role

PAPER = ("Huang, Perez, Ba & Volkovs 2020, Improving Transformer Optimization Through Better Initialization "
         "(ICML, section 3.2, Algorithm 2)")

EMBEDDINGS = ("embedding", "position_embedding", "token_type_embedding")
ROLE_HELP = "embedding, attn_qkv, attn_v, attn_out, mlp_in, mlp_out, readout, ..."
ENCODER_CONSTANT = 0.67
#: fairseq's MultiheadAttention draws q, k and v with xavier_uniform_(gain=1/sqrt(2)); the authors restore v only.
FAIRSEQ_QK_GAIN = 1 / math.sqrt(2)


def factors(part: str, n: int | None, m: int | None) -> tuple[float, str, float, str]:
    """(the v/w/MLP factor of this stack, its formula, its embeddings' factor, its formula)."""
    if part == "encoder":
        return ENCODER_CONSTANT * n ** -0.25, f"0.67 N^(-1/4), N = {n}", (9 * n) ** -0.25, f"(9N)^(-1/4), N = {n}"
    return (9 * m) ** -0.25, f"(9M)^(-1/4), M = {m}", (9 * m) ** -0.25, f"(9M)^(-1/4), M = {m}"


def choose(t, layer, spec: dict, model: Model):
    role = transformer_role(t, layer, spec, ROLE_HELP)
    if t.role == "bias":
        return use("zeros"), "t_fixup: biases start at 0"
    if role == "residual_gain":
        return use("ones"), "t_fixup: a residual gain starts at 1 (not one of T-Fixup's tensors: it leaves the branch as scaled)"
    s = stacks(layer, spec, model)
    scale, scale_text, emb, emb_text = factors(s.part, s.n, s.m)
    authors = spec["convention"] == "authors"
    if role in EMBEDDINGS:
        d = t.torch_shape[-1]
        std = d ** -0.5 * emb
        return (use("normal", std=std),
                f"t_fixup: input embeddings N(0, d^-1) x {emb_text} ({s.where}): std d^-1/2 x {emb:.6g} = "
                f"{d}^-1/2 x {emb:.6g} = {std:.6g}")
    if scaled(t, role):
        return (use("xavier_uniform", gain=scale),
                f"t_fixup: a v/w/MLP weight in the {s.part} ({s.where}), Xavier x {scale_text} = {scale:.6g}")
    if authors and (role == "attn_qkv" or t.kind in ("q", "k")):
        return (use("xavier_uniform", gain=FAIRSEQ_QK_GAIN),
                "t_fixup (the authors' code): q or k, fairseq's xavier_uniform with gain 1/sqrt(2), unscaled")
    if authors and role == "readout":
        d = t.torch_shape[1]
        return (use("normal", std=d ** -0.5),
                f"t_fixup (the authors' code): an untied output projection N(0, d^-1), d = {d}")
    return use("xavier_uniform"), f"t_fixup: {role} (not v, w or MLP), Xavier (xavier_uniform, gain 1)"


RECIPE = Recipe(
    Scheme("t_fixup", "T-Fixup: Xavier everywhere, embeddings N(0, 1/d); v, out and MLP weights (attn_v, attn_out, "
           "mlp_in, mlp_out) x 0.67 N^(-1/4) in the encoder, x (9M)^(-1/4) in the decoder; each stack's embeddings "
           "x (9 x its layers)^(-1/4); biases 0",
           "W_{v,w,mlp} ~ Xavier x 0.67 N^(-1/4) (encoder), x (9M)^(-1/4) (decoder); E ~ N(0, 1/d) x (9M)^(-1/4)",
           r"W_{v,w,\mathrm{mlp}} \sim \mathrm{Xavier} \cdot 0.67 N^{-1/4}\ \text{(enc)},\ (9M)^{-1/4}\ \text{(dec)};"
           r"\ E \sim \mathcal{N}(0, d^{-1}) \cdot (9M)^{-1/4}",
           (*params("encoder_decoder"),
            Param("convention", "string", "paper", choices=("paper", "authors"),
                  doc="paper: Algorithm 2; authors: their fairseq code (q and k at Xavier gain 1/sqrt(2), an untied "
                      "output projection N(0, 1/d))")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="the paper's Algorithm 2 and the authors' fairseq code (layer6ai-labs/T-Fixup), written in "
              "tests/core/recipes/test_t_fixup.py",
)
