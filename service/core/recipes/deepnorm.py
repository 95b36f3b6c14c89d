"""``deepnorm``: DeepNet's initialization (Wang et al. 2022, DeepNet: Scaling Transformers to 1,000 Layers).

    x_{l+1} = LN(alpha x_l + G(x_l))                 the residual connection (alpha: forward pass, not a weight)
    W ~ xavier_normal(gain beta)                     v_proj, out_proj, the MLP's fc1 and fc2 (roles attn_v,
                                                     attn_out, mlp_in, mlp_out)
    W ~ xavier_normal(gain 1)                        q_proj, k_proj (attn_qkv) and the other projections
    W ~ N(0, d^-1)  (std d^-1/2)                     embeddings and the readout (fairseq's and torchscale's)

                      alpha                        beta
    encoder-only      (2N)^(1/4)                   (8N)^(-1/4)
    decoder-only      (2M)^(1/4)                   (8M)^(-1/4)
    enc-dec encoder   0.81 (N^4 M)^(1/16)          0.87 (N^4 M)^(-1/16)
    enc-dec decoder   (3M)^(1/4)                   (12M)^(-1/4)

Why: with Post-LN, a model update moves the output by about the sum over layers of the branch updates;
up-weighting the residual (alpha > 1) and down-scaling the branches that carry the signal forward
(v, out, fc1, fc2 by beta; q and k only shape the attention pattern) bounds that sum by a constant
whatever N and M (DeepNet section 4, Table 1 and its pseudo-code, Figure 2).

``convention: "torchscale"`` follows torchscale 0.3.0 (the authors' library, which the tests check):
it never re-draws the projections (``MultiheadAttention.reset_parameters`` is never called), so every
linear layer keeps PyTorch's default U[+-1/sqrt(fan_in)] (weights and biases), and divides the weights
*and biases* of v_proj, out_proj, fc1, fc2 by 1/beta; and for an encoder-decoder's encoder it divides
by (N^4 M)^(1/16) / 1.15, i.e. beta = 1.15 (N^4 M)^(-1/16): 1.15 / 0.87 = 1.32 times the paper's
(1/1.15 = 0.87 is the paper's constant, applied inverted). Alpha, and beta everywhere else, agree.
"""

from __future__ import annotations

from ..scheme_entry import Param, Scheme
from .base import Model, Recipe, use
from .stacks import Stacks, params, scaled, stacks, transformer_role

PAPER = "Wang et al. 2022, DeepNet: Scaling Transformers to 1,000 Layers (section 4, Table 1, Figure 2)"

EMBEDDINGS = ("embedding", "position_embedding", "token_type_embedding", "readout")
ROLE_HELP = "attn_qkv, attn_v, attn_out, mlp_in, mlp_out, embedding, readout, ..."
#: torchscale's encoder-decoder encoder divides by (N^4 M)^(1/16) / 1.15 (the paper: multiplies by 0.87).
TORCHSCALE_ENC_DEC = 1.15
PAPER_ENC_DEC = 0.87


def constants(s: Stacks, convention: str = "paper") -> tuple[float, float, str, str]:
    """(alpha, beta, alpha's formula, beta's formula) of the stack ``s.part`` of model ``s.model``."""
    n, m = s.n, s.m
    if s.model == "encoder":
        return (2 * n) ** 0.25, (8 * n) ** -0.25, f"(2N)^(1/4), N = {n}", f"(8N)^(-1/4), N = {n}"
    if s.model == "decoder":
        return (2 * m) ** 0.25, (8 * m) ** -0.25, f"(2M)^(1/4), M = {m}", f"(8M)^(-1/4), M = {m}"
    if s.part == "decoder":
        return (3 * m) ** 0.25, (12 * m) ** -0.25, f"(3M)^(1/4), M = {m}", f"(12M)^(-1/4), M = {m}"
    base = (n ** 4 * m) ** 0.0625
    c = PAPER_ENC_DEC if convention == "paper" else TORCHSCALE_ENC_DEC
    beta_text = f"{c} (N^4 M)^(-1/16), N = {n}, M = {m}" + (
        " (torchscale divides by (N^4 M)^(1/16) / 1.15; the paper multiplies by 0.87)" if convention != "paper" else "")
    return 0.81 * base, c / base, f"0.81 (N^4 M)^(1/16), N = {n}, M = {m}", beta_text


def choose(t, layer, spec: dict, model: Model):
    role = transformer_role(t, layer, spec, ROLE_HELP)
    s = stacks(layer, spec, model)
    convention = spec["convention"]
    alpha, beta, alpha_text, beta_text = constants(s, convention)
    where = s.where
    forward = (f"; alpha = {alpha_text} = {alpha:.6g} weights the residual in the forward pass, "
               f"x_(l+1) = LN(alpha x_l + G(x_l)): a constant of the model, not a weight")
    if role == "residual_gain":
        return use("ones"), f"deepnorm: a residual gain starts at 1 (not one of DeepNet's tensors){forward}"
    is_scaled = scaled(t, role)
    factor = beta if is_scaled else 1.0
    if t.role == "bias":
        if convention == "paper":
            return use("zeros"), f"deepnorm: biases start at 0{forward}"
        return (use("uniform_fan_in", gain=factor),
                f"deepnorm (torchscale): nn.Linear's default bias U[+-1/sqrt(fan_in)]"
                f"{f' divided by 1/beta, beta = {beta_text} = {beta:.6g}' if is_scaled else ''} ({where}){forward}")
    if role in EMBEDDINGS:
        d = t.torch_shape[-1]
        return (use("normal", std=d ** -0.5),
                f"deepnorm: {role} N(0, d^-1), d = {d}, std {d ** -0.5:.6g} (fairseq's and torchscale's; "
                f"DeepNet leaves it alone){forward}")
    what = "v/out/fc1/fc2 projection" if is_scaled else "q/k or other projection"
    if convention == "paper":
        return (use("xavier_normal", gain=factor),
                f"deepnorm: a {what} ({where}), xavier_normal with gain "
                f"{f'beta = {beta_text} = {beta:.6g}' if is_scaled else '1'}{forward}")
    return (use("uniform_fan_in", gain=factor),
            f"deepnorm (torchscale): a {what} ({where}), nn.Linear's default U[+-1/sqrt(fan_in)]"
            f"{f' divided by 1/beta, beta = {beta_text} = {beta:.6g}' if is_scaled else ' (q, k: unscaled)'}{forward}")


RECIPE = Recipe(
    Scheme("deepnorm", "DeepNet: v, out, fc1, fc2 (roles attn_v, attn_out, mlp_in, mlp_out) xavier_normal with gain beta, "
           "q and k gain 1, embeddings N(0, 1/d); alpha (reported in each reason) up-weights the residual in the "
           "forward pass; encoder-only, decoder-only or encoder-decoder from the layer counts N and M",
           "W_{v,out,fc} ~ xavier_normal(gain beta); x_{l+1} = LN(alpha x_l + G(x_l)); "
           "decoder-only alpha = (2M)^(1/4), beta = (8M)^(-1/4)",
           r"W_{v,o,\mathrm{ffn}} \sim \mathrm{Xavier}(\beta);\ x_{l+1} = \mathrm{LN}(\alpha x_l + G(x_l));"
           r"\ \alpha = (2M)^{1/4},\ \beta = (8M)^{-1/4}",
           (*params("decoder"),
            Param("convention", "string", "paper", choices=("paper", "torchscale"),
                  doc="paper: Xavier normal, beta as published; torchscale: torchscale 0.3.0's (PyTorch's default "
                      "Linear init, biases scaled too, 1.15 for the paper's 0.87)")),
           None, family="recipe", paper=PAPER),
    choose,
    reference="torchscale 0.3.0 Encoder, Decoder, EncoderDecoder with deepnorm=True (tests/core/recipes/test_deepnorm.py)",
)
