"""``t_fixup``: T-Fixup (Huang, Perez, Ba & Volkovs 2020, Improving Transformer Optimization Through Better
Initialization, Algorithm 2): transformers trained without layer normalization and without warmup.

    W ~ Xavier (xavier_uniform, gain 1)              every weight but the input embeddings
    E ~ N(0, d^-1)  (std d^-1/2)                     input embeddings (d: the embedding dimension)
    v, w (attn_v, attn_out), MLP (mlp_in, mlp_out)   x 0.67 N^(-1/4) in the encoder (N encoder layers)
                                                     x (9M)^(-1/4) in the decoder (M decoder layers)
    E                                                x (9M)^(-1/4), in the encoder and the decoder
    b = 0

Why: without layer normalization and warmup, Adam's early updates are largest where the gradients through
the attention's softmax are; bounding the change of the output per update by Theta(eta) gives these scales
for the value (v), output (w) and MLP weights and for the embeddings, the paths that carry the signal
(q and k only shape the softmax and keep Xavier) (T-Fixup section 3.2, Algorithm 2). The paper writes
the embedding init N(0, d^-1/2) as a std: its code (fairseq's Embedding) draws std d^-1/2. The paper's
setting has as many encoder as decoder layers; an encoder-only model's embeddings take (9N)^(-1/4)
(an extension: the paper scales them by the decoder's depth).
"""

from __future__ import annotations

from ..scheme_entry import Scheme
from .base import Model, Recipe, use
from .stacks import params, scaled, stacks, transformer_role

PAPER = ("Huang, Perez, Ba & Volkovs 2020, Improving Transformer Optimization Through Better Initialization "
         "(ICML, section 3.2, Algorithm 2)")

EMBEDDINGS = ("embedding", "position_embedding", "token_type_embedding")
ROLE_HELP = "embedding, attn_qkv, attn_v, attn_out, mlp_in, mlp_out, readout, ..."
ENCODER_CONSTANT = 0.67


def factors(model: str, part: str, n: int | None, m: int | None) -> tuple[float, str, float, str]:
    """(the v/w/MLP factor of this stack, its formula, the embeddings' factor, its formula)."""
    letter, depth = ("N", n) if model == "encoder" else ("M", m)
    emb, emb_text = (9 * depth) ** -0.25, f"(9{letter})^(-1/4), {letter} = {depth}"
    if part == "encoder":
        return ENCODER_CONSTANT * n ** -0.25, f"0.67 N^(-1/4), N = {n}", emb, emb_text
    return (9 * m) ** -0.25, f"(9M)^(-1/4), M = {m}", emb, emb_text


def choose(t, layer, spec: dict, model: Model):
    role = transformer_role(t, layer, spec, ROLE_HELP)
    if t.role == "bias":
        return use("zeros"), "t_fixup: biases start at 0"
    if role == "residual_gain":
        return use("ones"), "t_fixup: a residual gain starts at 1 (not one of T-Fixup's tensors: it leaves the branch as scaled)"
    s = stacks(layer, spec, model)
    scale, scale_text, emb, emb_text = factors(s.model, s.part, s.n, s.m)
    where = s.where
    if role in EMBEDDINGS:
        d = t.torch_shape[-1]
        std = d ** -0.5 * emb
        return (use("normal", std=std),
                f"t_fixup: input embeddings N(0, d^-1) x {emb_text} ({where}): std d^-1/2 x {emb:.6g} = "
                f"{d}^-1/2 x {emb:.6g} = {std:.6g}")
    if scaled(t, role):
        return (use("xavier_uniform", gain=scale),
                f"t_fixup: a v/w/MLP weight in the {s.part} ({where}), Xavier x {scale_text} = {scale:.6g}")
    return use("xavier_uniform"), f"t_fixup: {role} (not v, w or MLP), Xavier (xavier_uniform, gain 1)"


RECIPE = Recipe(
    Scheme("t_fixup", "T-Fixup: Xavier everywhere, embeddings N(0, 1/d); v, out and MLP weights (attn_v, attn_out, "
           "mlp_in, mlp_out) x 0.67 N^(-1/4) in the encoder, x (9M)^(-1/4) in the decoder; embeddings x (9M)^(-1/4); "
           "biases 0",
           "W_{v,w,mlp} ~ Xavier x 0.67 N^(-1/4) (encoder), x (9M)^(-1/4) (decoder); E ~ N(0, 1/d) x (9M)^(-1/4)",
           r"W_{v,w,\mathrm{mlp}} \sim \mathrm{Xavier} \cdot 0.67 N^{-1/4}\ \text{(enc)},\ (9M)^{-1/4}\ \text{(dec)};"
           r"\ E \sim \mathcal{N}(0, d^{-1}) \cdot (9M)^{-1/4}",
           params("encoder_decoder"), None, family="recipe", paper=PAPER),
    choose,
    reference="the paper's Algorithm 2, applied to a model written in tests/core/recipes/test_t_fixup.py",
)
