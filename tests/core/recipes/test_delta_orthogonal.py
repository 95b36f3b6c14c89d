"""``delta_orthogonal`` against JAX's definition (jax/_src/nn/initializers.py, ``delta_orthogonal``):

- JAX's own test (tests/nn_test.py, ``testInitializer``) asserts the shape and dtype for 4-D kernels,
  here the same HWIO shapes in the keras layout, and every dtype;
- what its code builds: an ``orthogonal(scale)`` matrix of shape[-2:] = (in, out), orthonormal rows
  (in <= out), at the spatial centre (k - 1) // 2 (not PyTorch dirac_'s k // 2), zeros elsewhere;
  kernels of rank 3, 4 and 5 only, and ``fan_in`` <= ``fan_out``;
- the torch layout (OIHW) holds the same matrix transposed, at the same centre;
- the theory (variance gain^2 in / size) is the values' own; ``rng: torch`` is torch's
  ``orthogonal_`` on a fresh (out, in) tensor after the module's construction;
- it is a LAPACK tensor (ETag) and a whole matrix (cost limits); bad documents are 422s.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from service import create_app
from service.core import SpecError, linalg_identity, matrix_cache
from service.core.distributions import qr_work
from service.core.torch.init import ORTHOGONAL_BOUND_FACTOR

from tests.api.conftest import app, check_openapi, openapi, spec_dict  # noqa: F401  (fixtures)
from tests.api.helpers import assert_problem
from tests.helpers import draw, plan_of


def conv(cin, cout, k, dims=2, **kw):
    return {"type": f"conv{dims}d", "name": "c", "in_channels": cin, "out_channels": cout, "kernel_size": k, **kw}


def doc(layer, **kw):
    return {"architecture": {"layers": [layer]}, "scheme": {"name": "delta_orthogonal", **kw.pop("scheme", {})},
            "seed": kw.pop("seed", 5), **kw}


def centre_and_rest(w_hwio: np.ndarray):
    """JAX's centre (k - 1) // 2 of a (*k, in, out) kernel, and a copy of the kernel with it zeroed."""
    c = tuple((k - 1) // 2 for k in w_hwio.shape[:-2])
    rest = w_hwio.copy()
    rest[c] = 0
    return w_hwio[c], rest


# JAX's nn_test shapes of rank 4 (2, 3, 4, 5): kernel (2, 3), in 4, out 5; plus odd, square, rank 3 and 5
CASES = [((2, 3), 4, 5), ((3, 3), 8, 8), ((5, 5), 3, 16), ((4,), 6, 6), ((3,), 2, 7), ((3, 3, 3), 4, 4), ((2, 1, 3), 1, 3)]


@pytest.mark.parametrize("kernel, cin, cout", CASES)
@pytest.mark.parametrize("gain", [1.0, 2.5, "relu"])
def test_the_centre_is_orthogonal_times_gain_and_the_rest_zero(kernel, cin, cout, gain):
    layer = conv(cin, cout, list(kernel), dims=len(kernel))
    t, w = draw(doc(layer, scheme={"gain": gain}, layout="keras", dtype="float64"))
    assert w.shape == (*kernel, cin, cout)  # JAX's HWIO
    g = math.sqrt(2) if gain == "relu" else gain
    centre, rest = centre_and_rest(w)
    np.testing.assert_allclose(centre @ centre.T, g * g * np.eye(cin), atol=1e-12)  # orthonormal rows, as JAX's
    assert not rest.any()
    th = t.theory()
    assert th["parameters"] == {"gain": g}
    assert th["variance"] == pytest.approx(np.mean(w * w), rel=1e-12) and th["mean"] == 0.0
    assert th["bounds"] == [-g, g] and np.abs(w).max() <= g


@pytest.mark.parametrize("dtype, storage", [("float32", np.float32), ("float64", np.float64), ("float16", np.float16),
                                            ("bfloat16", None)])
def test_shape_and_dtype_as_jax_asserts(dtype, storage):
    plan = plan_of(doc(conv(4, 5, [2, 3]), layout="keras", dtype=dtype))
    v = plan.selected[0].generate()
    assert v.shape == (2, 3, 4, 5)
    if storage is not None:
        assert v.dtype == storage


def test_the_even_kernel_centre_is_jaxs_not_diracs():
    _, w = draw(doc(conv(3, 3, 4), dtype="float64"))  # torch layout (out, in, 4, 4)
    assert np.abs(w[:, :, 1, 1]).sum() > 0 and not w[:, :, 2, 2].any()  # (4 - 1) // 2 = 1; dirac_'s 4 // 2 = 2
    dirac = plan_of({"architecture": {"layers": [conv(3, 3, 4)]}, "scheme": "dirac"}).selected[0].generate()
    assert dirac[:, :, 2, 2].any() and not dirac[:, :, 1, 1].any()


def test_the_torch_layout_holds_the_same_matrix_transposed():
    _, oihw = draw(doc(conv(6, 10, 3), layout="torch", dtype="float64"))
    _, hwio = draw(doc(conv(6, 10, 3), layout="keras", dtype="float64"))
    np.testing.assert_array_equal(oihw.transpose(2, 3, 1, 0), hwio)
    q = oihw[:, :, 1, 1]  # (out, in): orthonormal columns
    np.testing.assert_allclose(q.T @ q, np.eye(6), atol=1e-12)


def test_a_wrong_centre_or_scale_fails_the_check():
    _, w = draw(doc(conv(4, 8, 3), scheme={"gain": 2.0}, layout="keras", dtype="float64"))
    centre, _ = centre_and_rest(w)
    assert not np.allclose(centre @ centre.T, np.eye(4), atol=1e-6)          # scale 1 is not gain 2
    assert not np.allclose(w[0, 0] @ w[0, 0].T, 4 * np.eye(4), atol=1e-6)     # (0, 0) is not the centre


@pytest.mark.parametrize("layer, fragment", [
    (conv(8, 4, 3), "in_channels <= out_channels"),                                  # JAX: fan_in <= fan_out
    ({"type": "dense", "name": "c", "in_features": 4, "out_features": 4}, "rank 3 to 5"),  # JAX: 3-D, 4-D or 5-D
    (conv(4, 8, 3, groups=2), "ungrouped convolutions (groups 1)"),
])
def test_what_jax_refuses_is_a_422_naming_the_scheme(layer, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        plan_of(doc(layer))
    r = create_app().test_client().post("/v1/weights", json=doc(layer))
    p = assert_problem(r, 422, "invalid-document")
    assert list(p["errors"]) == ["scheme"] and fragment in p["errors"]["scheme"][0]


def test_a_bad_gain_is_a_422_naming_the_parameter_and_bound():
    r = create_app().test_client().post("/v1/weights", json=doc(conv(4, 8, 3), scheme={"gain": 0}))
    p = assert_problem(r, 422, "invalid-document")
    assert list(p["errors"]) == ["scheme.gain"], p


def test_rng_torch_is_orthogonal_on_a_fresh_matrix_after_construction():
    layer = conv(5, 7, 3)
    plan = plan_of({**doc(layer, scheme={"gain": 1.5}), "rng": "torch", "seed": 11})
    t = plan.selected[0]
    ours = t.generate()
    torch.manual_seed(11)
    torch.nn.Conv2d(5, 7, 3)  # the module's constructor draws first
    q = torch.empty(7, 5)
    torch.nn.init.orthogonal_(q, gain=1.5)
    np.testing.assert_allclose(ours[:, :, 1, 1], q.numpy(), atol=ORTHOGONAL_BOUND_FACTOR * 7 * 2.0 ** -24 * 1.5)
    ours[:, :, 1, 1] = 0
    assert not ours.any()
    th = t.theory()
    assert th["exact"] is False and th["torch_call"].startswith("q = torch.nn.init.orthogonal_(torch.empty(w.shape[:2])")


def test_it_is_a_lapack_tensor_and_a_whole_matrix():
    plan = plan_of(doc(conv(32, 64, 3)))
    assert linalg_identity.lapack_tensors(plan) == ["c.weight"]
    torch_plan = plan_of({**doc(conv(32, 64, 3)), "rng": "torch"})
    assert linalg_identity.lapack_tensors(torch_plan) == ["c.weight"]
    work = plan.selected[0].matrix_work()
    n = 64 * 32 * 9
    qr = qr_work((64, 32), 4)
    assert work.flops == qr.flops + n and work.bytes == qr.bytes + n * (24 + 4)
    c = create_app({"max_matrix_flops": work.flops - 1}).test_client()
    p = assert_problem(c.post("/v1/weights", json={**doc(conv(32, 64, 3)), "format": "npy"}), 413, "limit-exceeded")
    assert p["limit"] == "max_matrix_flops" and p["requested"] == work.flops


@pytest.fixture
def client(request):
    return request.getfixturevalue("app").test_client()


def test_the_plan_answer_validates_against_openapi(client, request):
    check = request.getfixturevalue("check_openapi")
    body = doc(conv(4, 8, 3), scheme={"gain": "relu"})
    r = client.post("/v1/plan", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    check({"path": "/v1/plan", "method": "POST", "json": body}, r)


def test_range_parts_cut_one_draw(client):
    body = {**doc(conv(48, 64, 3), seed=91), "format": "npy", "tensors": ["c.weight"]}
    before = matrix_cache.cache().stats()["draws"]
    r = client.post("/v1/weights", json=body)
    assert r.status_code == 200, r.data[:300]
    whole = r.data
    parts = [client.post("/v1/weights", json=body, headers={"Range": f"bytes={a}-{a + 16383}"}).data
             for a in range(0, len(whole), 16384)]
    assert b"".join(parts) == whole
    assert matrix_cache.cache().stats()["draws"] - before == 1
