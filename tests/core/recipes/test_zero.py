"""``zero`` and ``zero_matrix``: ZerO's Algorithm 1 (Zhao, Schäfer & Anandkumar 2022) written here as
the paper prints it, with ``scipy.linalg.hadamard`` (Sylvester's construction, the paper's Definition
2) and partial identities as matrices, against the engine's values, value for value; the residual
rule of the recipe; the exact theory; the seed changing nothing; the whole-matrix cost limits; a bad
document over HTTP.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard

from service import create_app
from service.core import SpecError
from service.core.distributions import WHOLE_MAX_ELEMENTS
from service.core.structured import hadamard_sum
from service.core.torch.init import ORTHOGONAL_BOUND_FACTOR

from tests.api.conftest import app, check_openapi, openapi, spec_dict  # noqa: F401  (fixtures)
from tests.api.helpers import assert_problem
from tests.helpers import draw, plan_of


def partial_identity(rows: int, cols: int) -> np.ndarray:
    """The paper's Definition 1, I* in R^(rows x cols)."""
    return np.eye(rows, cols)


def algorithm_1(p: int, q: int, c=lambda m: 2.0 ** (-(m - 1) / 2)) -> np.ndarray:
    """ZerO's Algorithm 1 for W in R^(P x Q) (out P, in Q), as printed."""
    if p == q:
        return np.eye(p)
    if p < q:
        return partial_identity(p, q)
    m = math.ceil(math.log2(p))
    return c(m) * partial_identity(p, 2 ** m) @ hadamard(2 ** m) @ partial_identity(2 ** m, q)


#: (out P, in Q): square, narrowing, widening by less than / exactly / more than a power of two.
SHAPES = [(1, 1), (7, 7), (3, 8), (10, 64), (2, 1), (5, 3), (8, 2), (9, 4), (64, 16), (100, 37), (130, 129), (512, 3), (1000, 999)]


def dense(out, cols, **kw):
    return {"type": "dense", "name": "fc", "in_features": cols, "out_features": out, **kw}


@pytest.mark.parametrize("out, cols", SHAPES)
def test_zero_matrix_is_algorithm_1_value_for_value(out, cols):
    t, v = draw({"architecture": {"layers": [dense(out, cols)]}, "scheme": "zero_matrix", "dtype": "float64"})
    np.testing.assert_array_equal(v, algorithm_1(out, cols))
    # the theory is the values' own: mean and variance exact, the values within the bounds
    th = t.theory()
    assert th["mean"] == pytest.approx(v.mean(), rel=1e-12, abs=1e-15)
    assert th["variance"] == pytest.approx(v.var(), rel=1e-12, abs=1e-15)
    assert th["bounds"][0] <= v.min() and v.max() <= th["bounds"][1]
    m = math.ceil(math.log2(out)) if out > cols else 0
    assert th["parameters"] == {"magnitude": 2.0 ** (-(m - 1) / 2) if m else 1.0, "hadamard_m": m}


def test_a_wrong_factor_fails_the_reference():
    # The authors' MNIST notebook divides H by 2^(m/2) (orthonormal): sqrt(2) below Algorithm 1's c.
    _, v = draw({"architecture": {"layers": [dense(100, 37)]}, "scheme": "zero_matrix", "dtype": "float64"})
    notebook = algorithm_1(100, 37, c=lambda m: 2.0 ** (-m / 2))
    assert not np.allclose(v, notebook)
    np.testing.assert_allclose(v, notebook * math.sqrt(2), rtol=1e-15)


@pytest.mark.parametrize("out, cols", [(5, 3), (100, 37), (1000, 999), (3001, 1000), (1 << 20, 7), (7, 1 << 20)])
def test_the_hadamard_sum_behind_the_mean_is_exact(out, cols):
    if max(out, cols) <= 1024:
        assert hadamard_sum(out, cols) == int(algorithm_1(out, cols, c=lambda m: 1.0).sum())
    else:  # too large for scipy's 2^m x 2^m: the entries (-1)^popcount(i & j) directly
        odd = np.bitwise_count(np.arange(out, dtype=np.int64)[:, None] & np.arange(cols, dtype=np.int64)[None, :]) & 1
        assert hadamard_sum(out, cols) == out * cols - 2 * int(odd.sum(dtype=np.int64))


@pytest.mark.parametrize("layout", ["torch", "keras"])
@pytest.mark.parametrize("cin, cout, groups, k", [(4, 4, 1, 3), (3, 16, 1, 3), (16, 4, 1, 5), (8, 12, 2, 3), (6, 6, 3, 1)])
def test_a_convolution_holds_algorithm_1_at_its_centre_per_group(layout, cin, cout, groups, k):
    layer = {"type": "conv2d", "name": "c", "in_channels": cin, "out_channels": cout, "kernel_size": k, "groups": groups}
    t, v = draw({"architecture": {"layers": [layer]}, "scheme": "zero_matrix", "dtype": "float64", "layout": layout})
    assert t.theory()["mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert t.theory()["variance"] == pytest.approx(v.var(), rel=1e-12)
    w = v if layout == "torch" else v.transpose(3, 2, 0, 1)  # keras (kh, kw, in, out) -> (out, in, kh, kw)
    c = (k - 1) // 2
    block = algorithm_1(cout // groups, cin // groups)
    np.testing.assert_array_equal(w[:, :, c, c], np.tile(block, (groups, 1)))
    rest = w.copy()
    rest[:, :, c, c] = 0
    assert not rest.any()


def test_the_seed_changes_nothing():
    doc = {"architecture": {"layers": [dense(48, 16), {"type": "conv1d", "name": "c", "in_channels": 5,
                                                        "out_channels": 9, "kernel_size": 3}]}, "scheme": "zero"}
    a, b = plan_of({**doc, "seed": 1}), plan_of({**doc, "seed": 987654321})
    for x, y in zip(a.selected, b.selected):
        assert x.generate().tobytes() == y.generate().tobytes()


BLOCK = [
    {"type": "layernorm", "name": "ln1", "normalized_shape": [16]},
    {"type": "dense", "name": "qkv", "in_features": 16, "out_features": 48, "role": "attn_qkv"},
    {"type": "dense", "name": "proj", "in_features": 16, "out_features": 16, "role": "attn_out"},
    {"type": "dense", "name": "fc1", "in_features": 16, "out_features": 64, "role": "mlp_in"},
    {"type": "dense", "name": "fc2", "in_features": 64, "out_features": 16, "role": "mlp_out"},
    {"type": "conv2d", "name": "res", "in_channels": 16, "out_channels": 16, "kernel_size": 3, "role": "residual_out"},
    {"type": "dense", "name": "head", "in_features": 16, "out_features": 10, "role": "readout"},
]


def test_the_recipe_zeroes_each_residual_branch_end_and_reports_the_rule():
    plan = plan_of({"architecture": {"layers": BLOCK}, "scheme": "zero", "dtype": "float64"})
    by = {t.name: t for t in plan.tensors}
    for name in ("proj.weight", "fc2.weight", "res.weight"):
        assert by[name].chosen_by == "zero" and by[name].scheme == {"name": "zeros"}
        assert not by[name].generate().any()
        assert "last layer of a residual branch" in by[name].reason
        assert by[name].warnings == []  # zero on purpose: the block starts as the identity, and learns
    for name, (out, cols) in {"qkv.weight": (48, 16), "fc1.weight": (64, 16), "head.weight": (10, 16)}.items():
        t = by[name]
        assert t.chosen_by == "zero" and t.scheme == {"name": "zero_matrix"}
        np.testing.assert_array_equal(t.generate(), algorithm_1(out, cols))
    assert "c = 2^(-(m-1)/2) = 0.176777, m = ceil(log2 48) = 6" in by["qkv.weight"].reason
    assert "the partial identity (the first 10 inputs pass through)" in by["head.weight"].reason
    assert all(by[f"{n}.bias"].scheme == {"name": "zeros"} for n in ("qkv", "proj", "fc1", "fc2", "res", "head"))
    assert by["ln1.weight"].scheme == {"name": "ones"} and by["ln1.bias"].scheme == {"name": "zeros"}


def test_a_raw_tensor_that_is_no_matrix_is_refused():
    with pytest.raises(SpecError, match="zero applies Algorithm 1 to matrices and convolution kernels"):
        plan_of({"architecture": {"layers": [{"type": "tensor", "name": "tok", "shape": [1, 1, 8]}]}, "scheme": "zero"})


def test_zero_matrix_goes_through_the_whole_matrix_limits():
    big = {"type": "tensor", "name": "w", "shape": [8193, 2048]}  # 2^24 + 2048 elements
    with pytest.raises(SpecError) as e:
        plan_of({"architecture": {"layers": [big]}, "scheme": "zero_matrix"})
    assert e.value.limit == "whole_matrix_elements" and e.value.allowed == WHOLE_MAX_ELEMENTS
    t = plan_of({"architecture": {"layers": [dense(300, 200)]}, "scheme": "zero_matrix"}).selected[0]
    work = t.matrix_work()
    assert work.flops == 4 * 300 * 200 and work.bytes == 300 * 200 * (12 + 16 + 4)
    c = create_app({"max_matrix_flops": work.flops - 1}).test_client()
    r = c.post("/v1/weights", json={"architecture": {"layers": [dense(300, 200)]}, "scheme": "zero", "format": "npy"})
    p = assert_problem(r, 413, "limit-exceeded")
    assert p["limit"] == "max_matrix_flops" and p["requested"] == work.flops


def test_a_bad_document_is_a_422_naming_the_field():
    c = create_app().test_client()
    r = c.post("/v1/weights", json={"architecture": {"layers": [dense(4, 4)]}, "scheme": {"name": "zero", "std": 1}})
    p = assert_problem(r, 422, "invalid-document")
    assert list(p["errors"]) == ["scheme.std"] and "unknown parameter for scheme 'zero'" in p["errors"]["scheme.std"][0]
    r = c.post("/v1/plan", json={"architecture": {"layers": [{"type": "tensor", "name": "tok", "shape": [2, 2, 2]}]},
                                "scheme": "zero"})
    p = assert_problem(r, 422, "invalid-document")
    assert list(p["errors"]) == ["scheme"] and "shape [2, 2, 2]" in p["errors"]["scheme"][0]


def test_rng_torch_draws_nothing_for_it():
    # zero_matrix consumes no stream: the next layer's orthogonal_ is torch's after the two constructors
    doc = {"architecture": {"layers": [dense(12, 5), {**dense(4, 4), "name": "fc2", "scheme": "orthogonal"}]},
           "scheme": "zero_matrix", "seed": 7, "rng": "torch"}
    plan = plan_of(doc)
    w, w2 = plan.selected[0], plan.selected[2]
    assert w.theory()["exact"] is True and "no random draw" in w.theory()["torch_call"]
    np.testing.assert_array_equal(w.generate(), algorithm_1(12, 5).astype(np.float32))
    torch.manual_seed(7)
    torch.nn.Linear(5, 12), torch.nn.Linear(4, 4)  # the constructors draw first
    q = torch.empty(4, 4)
    torch.nn.init.orthogonal_(q)
    np.testing.assert_allclose(w2.generate(), q.numpy(), atol=ORTHOGONAL_BOUND_FACTOR * 4 * 2.0 ** -24)


@pytest.fixture
def client(request):
    return request.getfixturevalue("app").test_client()


def test_the_plan_answer_validates_against_openapi(client, request):
    check = request.getfixturevalue("check_openapi")
    body = {"architecture": {"layers": BLOCK + [{"type": "conv1d", "name": "c", "in_channels": 3, "out_channels": 5, "kernel_size": 3}]}, "scheme": "zero"}
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    check({"path": "/v1/plan", "method": "POST", "json": body}, r)
