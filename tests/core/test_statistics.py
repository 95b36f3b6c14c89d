"""Every scheme x shapes x dtypes: the drawn values agree with the reported theory.

Seeded, so deterministic. Tolerances are 6 standard errors of the estimator (plus the
dtype's rounding), so a failure means the theory and the sampler disagree, not bad luck.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from service.core.dtypes import DTYPES
from tests.helpers import draw, tensor_doc

DTYPE_NAMES = ["float32", "float64", "float16", "bfloat16"]

# (scheme spec, shapes it applies to)
IID = [
    ("xavier_uniform", None), ("xavier_normal", None), ({"name": "xavier_normal", "truncate": True}, None),
    ("he_uniform", None), ("he_normal", None), ({"name": "he_normal", "negative_slope": 0.2, "mode": "fan_out"}, None),
    ({"name": "he_uniform", "gain": "tanh"}, None), ("lecun_uniform", None), ("lecun_normal", None),
    ({"name": "lecun_normal", "truncate": True}, None), ("uniform_fan_in", None),
    ({"name": "variance_scaling", "scale": 0.5, "mode": "fan_geo_avg", "distribution": "uniform"}, None),
    ({"name": "variance_scaling", "scale": 2.0, "mode": "fan_avg", "distribution": "normal"}, None),
    ({"name": "variance_scaling"}, None),  # JAX's default: truncated_normal, fan_in
    ({"name": "uniform", "low": -0.3, "high": 0.7}, None), ({"name": "normal", "mean": 0.5, "std": 0.2}, None),
    ({"name": "normal", "std": 0.2, "truncate": True}, None),
    ({"name": "truncated_normal", "mean": 0.1, "std": 0.5, "low": -0.5, "high": 1.0}, None),
    ({"name": "truncated_normal", "std": 1.0, "low": 2.0, "high": 3.5}, None),  # far tail: inverse-CDF path
]
SHAPES = [(300, 500), (32, 16, 3, 3), (70_001,)]


def _tolerances(values, theory, dtype):
    n = values.size
    sd = theory["std"]
    eps = DTYPES[dtype].finfo_eps
    scale = max(abs(theory["mean"]) + 3 * sd, 1e-12)
    mean_tol = 6 * sd / math.sqrt(n) + eps * scale
    # Var(x^2) <= E[x^4] <= 9 sd^4 for these distributions (kurtosis <= 3, plus the mean shift).
    var_tol = 6 * math.sqrt(9.0 / n) * theory["variance"] + 4 * eps * scale * sd
    return mean_tol, var_tol


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("scheme", [s for s, _ in IID], ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s.values())))
def test_iid_schemes_match_theory(scheme, shape, dtype):
    t, x = draw(tensor_doc(shape, scheme, dtype=dtype, seed=7))
    th = t.theory()
    assert list(x.shape) == list(shape) and th["shape"] == list(shape)
    mean_tol, var_tol = _tolerances(x, th, dtype)
    assert abs(x.mean() - th["mean"]) <= mean_tol, (x.mean(), th["mean"], mean_tol)
    assert abs(x.var() - th["variance"]) <= var_tol, (x.var(), th["variance"], var_tol)
    assert math.isclose(th["std"], math.sqrt(th["variance"]))
    if th["bounds"] is not None:
        lo, hi = th["bounds"]
        assert x.min() >= lo and x.max() <= hi, (x.min(), x.max(), lo, hi)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scheme", [s for s, _ in IID], ids=lambda s: s if isinstance(s, str) else "-".join(map(str, s.values())))
def test_kolmogorov_smirnov_against_the_reported_distribution(scheme, dtype):
    t, x = draw(tensor_doc((400, 300), scheme, dtype=dtype, seed=11))
    result = stats.kstest(x.reshape(-1), t.distribution.cdf)
    assert result.pvalue > 1e-3, (t.distribution, result)


def test_kolmogorov_smirnov_detects_a_wrong_distribution():
    """The KS check has teeth: normal samples fail against the uniform of the same variance."""
    _, x = draw(tensor_doc((400, 300), "xavier_normal", seed=11))
    other = draw(tensor_doc((400, 300), "xavier_uniform", seed=11))[0].distribution
    assert stats.kstest(x.reshape(-1), other.cdf).pvalue < 1e-6


@pytest.mark.parametrize("layout", ["torch", "keras"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(64, 64), (32, 100), (100, 32), (16, 8, 3, 3), (8, 16, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_is_orthogonal(shape, dtype, layout, gain):
    t, x = draw(tensor_doc(shape, {"name": "orthogonal", "gain": gain}, dtype=dtype, layout=layout))
    th = t.theory()
    # On the PyTorch view: rows = dim 0 (torch) / last dim (keras); Q^T Q = gain^2 I on the smaller side.
    m = x.reshape(shape[0], -1) if layout == "torch" else np.moveaxis(x, -1, 0).reshape(shape[-1], -1)
    small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    tol = 1e-5 if dtype == "float32" else 1e-12
    assert np.allclose(small, gain ** 2 * np.eye(small.shape[0]), atol=tol * gain ** 2 * 10)
    assert math.isclose(np.mean(x ** 2), th["variance"] + th["mean"] ** 2, rel_tol=1e-4)
    lo, hi = th["bounds"]
    assert x.min() >= lo and x.max() <= hi


def test_orthogonal_needs_rank_2():
    from service.core import SpecError
    from tests.helpers import plan_of

    with pytest.raises(SpecError, match="rank >= 2"):
        plan_of(tensor_doc((10,), "orthogonal"))


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6, 2)])
def test_identity(shape):
    t, x = draw(tensor_doc(shape, {"name": "identity", "gain": 2.0}))
    assert np.array_equal(x, 2.0 * np.eye(*shape))
    assert math.isclose(x.mean(), t.theory()["mean"]) and math.isclose(x.var(), t.theory()["variance"], abs_tol=1e-12)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("kernel", [[3], [3, 3], [2, 4], [3, 1, 3]])
def test_dirac_passes_the_input_through(groups, kernel):
    from tests.helpers import plan_of

    d = len(kernel)
    doc = {"architecture": {"layers": [{"type": f"conv{d}d", "name": "c", "in_channels": 4, "out_channels": 4,
                                        "kernel_size": kernel, "groups": groups}]}, "scheme": "dirac"}
    t = plan_of(doc).selected[0]
    w = t.generate().astype(np.float64)
    centre = tuple(k // 2 for k in kernel)
    per = 4 // groups
    for o in range(4):
        for i in range(4 // groups):
            expect = 1.0 if i == o % per else 0.0
            assert w[(o, i) + centre] == expect
    assert w.sum() == 4
    assert math.isclose(w.mean(), t.theory()["mean"]) and math.isclose(w.var(), t.theory()["variance"])


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9])
def test_sparse(sparsity):
    t, x = draw(tensor_doc((200, 300), {"name": "sparse", "sparsity": sparsity, "std": 0.05}))
    zeros = math.ceil(sparsity * 200)
    assert all(np.count_nonzero(x[:, j] == 0) == zeros for j in range(300))
    nz = x[x != 0]
    assert abs(nz.std() - 0.05) < 6 * 0.05 / math.sqrt(nz.size) * 2
    assert abs(x.var() - t.theory()["variance"]) < 0.05 * t.theory()["variance"]


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("scheme,value", [("zeros", 0.0), ("ones", 1.0), ({"name": "constant", "value": -0.25}, -0.25)])
def test_constants(scheme, value, dtype):
    t, x = draw(tensor_doc((7, 9), scheme, dtype=dtype))
    assert np.all(x == value)
    th = t.theory()
    assert th["variance"] == 0 and th["mean"] == value and th["bounds"] == [value, value]
    assert th["warnings"][0]["code"] == "symmetric"


def test_truncate_true_keeps_the_target_variance():
    """Keras/JAX truncation: actual variance == target; PyTorch-style truncation reports both."""
    t, x = draw(tensor_doc((500, 500), {"name": "he_normal", "truncate": True}))
    th = t.theory()
    assert th["distribution"] == "truncated_normal"
    assert math.isclose(th["variance"], th["target_variance"], rel_tol=1e-9)
    assert math.isclose(th["target_variance"], 2 / 500)
    lim = 2 * math.sqrt(2 / 500) / 0.87962566103423978
    assert math.isclose(th["bounds"][1], lim, rel_tol=1e-6)
    t2, _ = draw(tensor_doc((500, 500), {"name": "truncated_normal", "std": 1.0, "low": -1.0, "high": 1.0}))
    th2 = t2.theory()
    assert th2["target_variance"] == 1.0 and 0.29 < th2["variance"] < 0.30  # Var of N(0,1) | [-1, 1] = 0.2911


def test_normal_is_never_silently_truncated():
    t, x = draw(tensor_doc((1000, 1000), "he_normal", seed=3))
    th = t.theory()
    assert th["distribution"] == "normal" and th["bounds"] is None
    assert np.abs(x).max() > 4.5 * th["std"]  # 1M draws: the untruncated tail is there


@pytest.mark.parametrize("scheme,formula", [
    ("xavier_uniform", lambda fi, fo: 2 / (fi + fo)),
    ("xavier_normal", lambda fi, fo: 2 / (fi + fo)),
    ("he_uniform", lambda fi, fo: 2 / fi),
    ("he_normal", lambda fi, fo: 2 / fi),
    ({"name": "he_normal", "negative_slope": 0.5}, lambda fi, fo: 2 / (1.25 * fi)),
    ({"name": "he_normal", "mode": "fan_out"}, lambda fi, fo: 2 / fo),
    ("lecun_uniform", lambda fi, fo: 1 / fi),
    ("lecun_normal", lambda fi, fo: 1 / fi),
    ("uniform_fan_in", lambda fi, fo: 1 / (3 * fi)),
    ({"name": "xavier_uniform", "gain": "tanh"}, lambda fi, fo: (5 / 3) ** 2 * 2 / (fi + fo)),
    ({"name": "xavier_normal", "gain": "relu"}, lambda fi, fo: 2 * 2 / (fi + fo)),
    ({"name": "xavier_normal", "gain": "leaky_relu"}, lambda fi, fo: 2 / (1 + 0.01 ** 2) * 2 / (fi + fo)),
    ({"name": "xavier_normal", "gain": "selu"}, lambda fi, fo: 0.75 ** 2 * 2 / (fi + fo)),
    ({"name": "xavier_normal", "gain": "sigmoid"}, lambda fi, fo: 2 / (fi + fo)),
    ({"name": "variance_scaling", "mode": "fan_geo_avg", "distribution": "normal"}, lambda fi, fo: 1 / math.sqrt(fi * fo)),
])
def test_textbook_formulas(scheme, formula):
    """The default keeps the textbook formulas exactly; gain names follow PyTorch's calculate_gain."""
    t, _ = draw(tensor_doc((30, 70), scheme))
    th = t.theory()
    assert (th["fan_in"], th["fan_out"]) == (70, 30)
    assert math.isclose(th["target_variance"], formula(70, 30), rel_tol=1e-12)
    assert math.isclose(th["variance"], formula(70, 30), rel_tol=1e-9)
    if th["distribution"] == "uniform":
        assert math.isclose(th["parameters"]["high"], math.sqrt(3 * formula(70, 30)), rel_tol=1e-12)
