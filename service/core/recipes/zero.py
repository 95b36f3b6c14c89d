"""``zero``: ZerO initialization (Zhao, Schäfer & Anandkumar 2022, TMLR, arXiv:2110.12661).

    every weight (out, in):   Algorithm 1 (scheme ``zero_matrix``)
        out == in:  W = I
        out <  in:  W = I*                                  the first out inputs pass through
        out >  in:  W = c I* H_m I*,  m = ceil(log2 out),  c = 2^(-(m-1)/2)
        a convolution: that matrix at the kernel's centre, zeros elsewhere
    the last layer of each residual branch (attn_out, mlp_out, residual_out):  W = 0
    b = 0

Why: a network of identities and zero-initialized residual branches starts as a deep identity map, so
the signal neither grows nor shrinks with depth, with no variance to choose. Where a layer widens,
the identity alone would leave out - in units at zero and the rank of the representation stuck at the
narrowest width (the paper's "training degeneracy"); the Hadamard transform spreads the in inputs over
every output with orthogonal directions (H_m^T H_m = 2^m I), c keeping their scale. The residual
branches start at zero so that each block is the identity until training moves it (the paper's
ResNet variant). Nothing is random: the seed changes nothing, which is the paper's point
(reproducibility across runs).

Follows Algorithm 1 as printed, c = 2^(-(m-1)/2); the authors' MNIST notebook divides by 2^(m/2)
instead (an orthonormal H), sqrt(2) smaller. Checked against Algorithm 1 written in the test with
``scipy.linalg.hadamard`` (tests/core/recipes/test_zero.py).
"""

from __future__ import annotations

from ..errors import SpecError
from ..roles import is_residual
from ..scheme_entry import Scheme
from ..structured import zero_magnitude
from .base import Model, Recipe, use

PAPER = ("Zhao, Schäfer & Anandkumar 2022, ZerO Initialization: Initializing Neural Networks with only Zeros and "
         "Ones (TMLR), arXiv:2110.12661, Algorithm 1")


def choose(t, layer, spec: dict, model: Model):
    if t.role == "bias":
        return use("zeros"), "zero: biases start at 0"
    if is_residual(t.layer_role):
        why = f"zero: the last layer of a residual branch (role {t.layer_role}) starts at 0, so the block starts as the identity"
        return use("zeros"), why
    if t.layer_type == "tensor" and len(t.torch_shape) != 2:
        raise SpecError("scheme", f"zero applies Algorithm 1 to matrices and convolution kernels; the raw tensor "
                                  f"{t.name} has shape {list(t.torch_shape)} (give it a scheme of its own)")
    out, cols = t.torch_shape[0] // t.groups, t.torch_shape[1]
    where = " at the kernel's centre, zeros elsewhere" if len(t.torch_shape) > 2 else ""
    if out == cols:
        rule = f"out == in ({out}): the identity{where}"
    elif out < cols:
        rule = f"out {out} < in {cols}: the partial identity{where} (the first {out} inputs pass through)"
    else:
        m = (out - 1).bit_length()
        rule = (f"out {out} > in {cols}: the first {out} x {cols} block of the Hadamard matrix H_{m} times "
                f"c = 2^(-(m-1)/2) = {zero_magnitude(out, cols):.6g}, m = ceil(log2 {out}) = {m}{where}")
    return use("zero_matrix"), f"zero: Algorithm 1, {rule}; deterministic (the seed changes nothing)"


RECIPE = Recipe(
    Scheme("zero", "ZerO: every weight by Algorithm 1 (identity if out == in, partial identity if out < in, "
           "2^(-(m-1)/2) times a Hadamard block if out > in, m = ceil(log2 out); convolutions at the kernel's "
           "centre); the last layer of each residual branch (role attn_out, mlp_out, residual_out) 0; biases 0; "
           "norms 1 and 0. Deterministic: the seed changes nothing",
           "I | I* | 2^(-(m-1)/2) I* H_m I*; residual outputs 0",
           r"I \mid I^* \mid 2^{-(m-1)/2} I^* H_m I^*;\ \text{residual outputs } 0",
           (), None, family="recipe", paper=PAPER),
    choose,
    reference="ZerO's Algorithm 1 written with scipy.linalg.hadamard (tests/core/recipes/test_zero.py)",
)
