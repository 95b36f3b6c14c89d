"""Signal-propagation diagnostics (service.core.diagnose): the classic notes, measured.

Documents are validated as the API validates them (service.document), once; a bad document's
error is the boundary's when the document's shape is wrong, the engine's when only the network
can say (layers that cannot run or do not fit, schemes that cannot apply).

Seeded and deterministic. The 20-layer, width-256 networks run once per module (one diagnose
call per activation, every scheme of the claim compared in it).
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from service.core import SpecError, policies
from service.core import diagnose as dg
from service.core.diagnose import measure, network
from service.core.activations import Activation
from service.core.dtypes import as_float
from service.document import ValidationError, flatten_messages, load_diagnose_request
from tests.helpers import plan_of


def diagnose(doc, **kw) -> dict:
    """A diagnose document, validated as the API validates it, run."""
    return dg.diagnose(load_diagnose_request(doc), **kw)


def probe_of(doc) -> dg.Probe:
    return dg.build_probe(load_diagnose_request(doc))


def problem(doc) -> tuple[str, str, str | None]:
    """(field, message, limit) of a bad document: the boundary's first error, else the engine's."""
    try:
        dg.diagnose(load_diagnose_request(doc))
    except ValidationError as e:
        field, messages = next(iter(flatten_messages(e.messages).items()))
        return field, messages[0], None
    except SpecError as e:
        return e.field, e.message, e.limit
    raise AssertionError("no error")

DEPTH, WIDTH, BATCH = 20, 256, 256
XAVIER_TANH = {"name": "xavier_normal", "gain": "tanh"}   # Xavier with PyTorch's calculate_gain('tanh') = 5/3
SMALL = {"name": "normal", "std": 0.01}
LARGE = {"name": "normal", "std": 1.0}
CONST = {"name": "constant", "value": 0.05}


def mlp(activation, depth=DEPTH, width=WIDTH, **doc):
    layers = [{"type": "dense", "name": f"fc{i}", "in_features": width, "out_features": width, "activation": activation}
              for i in range(depth)]
    return {"architecture": {"layers": layers}, **doc}


def by_name(report):
    return {json.dumps(r["scheme"], sort_keys=True): r for r in report["results"]}


def act_std(result):
    return np.array([lay["activation"]["std"] for lay in result["layers"]])


@pytest.fixture(scope="module")
def tanh_report():
    return diagnose(mlp("tanh", schemes=[XAVIER_TANH, "xavier_normal", SMALL, LARGE, "zeros", CONST],
                           batch=BATCH, seed=7))


@pytest.fixture(scope="module")
def relu_report():
    return diagnose(mlp("relu", schemes=["he_normal", "xavier_normal", "zeros", CONST], batch=BATCH, seed=7))


@pytest.fixture(scope="module")
def linear_report():
    return diagnose(mlp("linear", schemes=[{"name": "xavier_normal", "gain": 1.5}, "xavier_normal"],
                           batch=BATCH, seed=7))


# --------------------------------------------------------------------------- the notes' claims

def test_tanh_xavier_keeps_the_activation_std_and_is_healthy(tanh_report):
    r = tanh_report["results"][0]
    assert r["scheme"] == {"name": "xavier_normal", "mode": "fan_avg", "gain": "tanh", "truncate": False}
    s = act_std(r)
    assert 0.5 <= s[-1] / s[0] <= 2.0
    assert s.max() / s.min() <= 2.0             # and not only at the ends
    assert r["verdict"] == "healthy" and r["first_bad_layer"] is None
    assert all(lay["problems"] == [] for lay in r["layers"])


def test_tanh_xavier_at_gain_1_decays_like_one_over_sqrt_depth_but_is_not_vanishing(tanh_report):
    # Glorot's gain-1 Xavier: tanh compresses unit-variance signals, so the std decays slowly
    # (~1/sqrt(2 l), a power law, not geometric): ~4x over 20 layers, inside the one-decade band.
    r = tanh_report["results"][1]
    s = act_std(r)
    assert 2.0 < s[0] / s[-1] < 6.0
    assert np.all(np.diff(s) < 0)
    assert r["verdict"] == "healthy"


def test_tanh_with_small_random_weights_vanishes(tanh_report):
    r = tanh_report["results"][2]
    s = act_std(r)
    ratios = s[1:] / s[:-1]
    assert np.all(ratios < 0.25)                 # 0.01 * sqrt(256) = 0.16 per layer
    assert r["verdict"] == "vanishing"
    assert r["first_bad_layer"] == "fc0"         # the first layer gets the smallest gradient
    grads = [lay["gradient_std"] for lay in r["layers"]]
    assert grads[0] < 1e-10 * grads[-1]          # the gradient fades on its way back
    assert r["layers"][0]["backward_ratio"] < 1e-10
    assert "small" in r["explanation"] and "Xavier" in r["explanation"]


def test_tanh_with_large_random_weights_saturates(tanh_report):
    r = tanh_report["results"][3]
    assert all(lay["saturated_fraction"] > 0.8 for lay in r["layers"])
    assert r["verdict"] == "saturated" and r["first_bad_layer"] == "fc0"
    assert "too large" in r["explanation"] and "Xavier" in r["explanation"]
    # the activation histogram piles up in the outer bins
    h = r["layers"][-1]["activation"]["histogram"]
    assert h["edges"][0] == -1.0 and h["edges"][-1] == 1.0
    assert h["counts"][0] + h["counts"][-1] > 0.8 * sum(h["counts"])


def test_relu_he_keeps_the_activation_std_and_is_healthy(relu_report):
    r = relu_report["results"][0]
    s = act_std(r)
    assert 0.5 <= s[-1] / s[0] <= 2.0
    assert r["verdict"] == "healthy"


def test_relu_xavier_shrinks_by_sqrt2_per_layer_and_vanishes(relu_report):
    r = relu_report["results"][1]
    s = act_std(r)
    per_layer = (s[-1] / s[0]) ** (1 / (DEPTH - 1))
    assert abs(per_layer - 1 / math.sqrt(2)) < 0.03
    slope = np.polyfit(np.arange(DEPTH), np.log(s), 1)[0]       # the trend, not just the ends
    assert abs(math.exp(slope) - 1 / math.sqrt(2)) < 0.03
    assert r["verdict"] == "vanishing"
    assert "He" in r["explanation"]


def test_relu_is_positively_homogeneous_so_xavier_and_he_differ_only_by_scale(relu_report):
    he, xa = relu_report["results"][0], relu_report["results"][1]
    assert [lay["dead_fraction"] for lay in he["layers"]] == [lay["dead_fraction"] for lay in xa["layers"]]


@pytest.mark.parametrize("which", ["tanh", "relu"])
@pytest.mark.parametrize("scheme", ["zeros", "constant"])
def test_zeros_and_constant_are_symmetric(which, scheme, tanh_report, relu_report):
    report = tanh_report if which == "tanh" else relu_report
    name = "zeros" if scheme == "zeros" else "constant"
    r = next(r for r in report["results"] if r["scheme"]["name"] == name)
    assert r["verdict"] == "symmetric" and r["first_bad_layer"] == "fc0"
    assert r["layers"][0]["symmetric"] is True
    if scheme == "zeros":
        assert "does not train" in r["explanation"]
    else:
        assert "same" in r["explanation"] and "0.05" in r["explanation"]


def test_random_schemes_are_never_symmetric(tanh_report, relu_report):
    for r in tanh_report["results"][:4] + relu_report["results"][:2]:
        assert not any(lay["symmetric"] for lay in r["layers"])


def test_linear_at_1_5x_xavier_explodes(linear_report):
    r = linear_report["results"][0]
    assert r["scheme"]["gain"] == 1.5
    s = act_std(r)
    assert abs((s[-1] / s[0]) ** (1 / (DEPTH - 1)) - 1.5) < 0.05
    assert r["verdict"] == "exploding" and "too large" in r["explanation"]
    healthy = linear_report["results"][1]
    assert healthy["verdict"] == "healthy"
    assert 0.8 < act_std(healthy)[-1] < 1.25


def test_sigmoid_with_xavier_still_vanishes_and_says_why():
    r = diagnose(mlp("sigmoid", depth=12, width=64, schemes=["xavier_normal"], batch=64))["results"][0]
    assert r["verdict"] == "vanishing"
    assert "1/4" in r["explanation"]


@pytest.mark.parametrize("activation, words", [
    ("tanh", "Xavier initialization with gain 5/3 (xavier_uniform with gain tanh)"),
    ("relu", "He initialization (he_normal)"),
    ({"name": "leaky_relu", "negative_slope": 0.2}, "He initialization (he_normal with negative_slope 0.2)"),
    ("selu", "LeCun normal (lecun_normal)"),
    ("linear", "Xavier initialization (xavier_uniform)"),
])
@pytest.mark.parametrize("scheme", ["auto", SMALL, "zeros"])
def test_the_advice_names_the_scheme_auto_picks(activation, words, scheme):
    """Healthy, vanishing or symmetric, the explanation recommends exactly what `auto` gives the layers
    (policies.rule_of_thumb owns both), never another variant of the rule (tanh: not plain xavier_normal)."""
    doc = mlp(activation, depth=3, width=16, schemes=[scheme], batch=16)
    r = diagnose(doc)["results"][0]
    assert words in r["explanation"], r["explanation"]
    assert "xavier_normal" not in r["explanation"]
    auto = plan_of({"architecture": doc["architecture"], "scheme": "auto"}).tensors[0].scheme
    spec, said = policies.rule_of_thumb(Activation(**({"name": activation} if isinstance(activation, str) else activation)))
    assert said == words and {k: auto[k] for k in spec} == spec


# --------------------------------------------------------------------------- response shape

def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_response_shape(tanh_report):
    r = tanh_report
    assert r["seed"] == 7 and r["batch"] == BATCH and r["input_shape"] == [WIDTH]
    assert [res["scheme"]["name"] for res in r["results"]] == ["xavier_normal", "xavier_normal", "normal", "normal",
                                                               "zeros", "constant"]
    assert r["request"]["schemes"] == [res["scheme"] for res in r["results"]]
    # exactly one verdict per scheme, and no other key of that name anywhere
    assert sum(k == "verdict" for k in _keys(r)) == len(r["results"])
    for res in r["results"]:
        assert res["verdict"] in dg.VERDICTS
        assert set(res) >= {"scheme", "verdict", "first_bad_layer", "explanation", "layers", "warnings"}
        assert res["explanation"].endswith(".") and ". " not in res["explanation"]   # one sentence
        assert len(res["layers"]) == DEPTH
        for lay in res["layers"]:
            h = lay["activation"]["histogram"]
            assert len(h["counts"]) == measure.HIST_BINS and len(h["edges"]) == measure.HIST_BINS + 1
            assert sum(h["counts"]) == BATCH * WIDTH
            assert lay["dead_fraction"] is None and lay["saturated_fraction"] is not None
            w = lay["weight"]
            assert w["name"] == f"{lay['name']}.weight" and sum(w["histogram"]["counts"]) == WIDTH * WIDTH
    json.dumps(r, allow_nan=False)               # strictly JSON (no NaN, no Infinity)


def test_default_scheme_is_the_requests():
    doc = mlp("relu", depth=2, width=8, batch=16)
    assert [res["scheme"] for res in diagnose(doc)["results"]] == [{"name": "auto"}]
    doc["scheme"] = "lecun_uniform"
    assert diagnose(doc)["results"][0]["scheme"]["name"] == "lecun_uniform"
    assert diagnose({k: v for k, v in doc.items() if k != "batch"})["batch"] == dg.BATCH_DEFAULT


def test_deterministic_and_seeded():
    doc = mlp("gelu", depth=3, width=16, schemes=["he_normal", "lecun_uniform"], batch=8, seed=123)
    a, b = diagnose(doc), diagnose(json.loads(json.dumps(doc)))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    c = diagnose({**doc, "seed": 124})
    assert c["results"][0]["layers"][0]["activation"]["std"] != a["results"][0]["layers"][0]["activation"]["std"]


def test_schemes_see_the_same_probe():
    """Input and output gradient depend on the seed only, so schemes are compared on the same data."""
    p = probe_of(mlp("tanh", depth=2, width=4, batch=5, seed=3))
    x1, g1 = dg.probe_streams(3, 5, p.input_shape, (4,))
    x2, g2 = dg.probe_streams(3, 5, p.input_shape, (4,))
    assert np.array_equal(x1, x2) and np.array_equal(g1, g2) and not np.array_equal(x1[:, :4], g1)


# --------------------------------------------------------------------------- it runs the engine's weights

@pytest.mark.parametrize("layout", ["torch", "keras"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_runs_exactly_the_engines_weights_and_biases(layout, dtype):
    doc = {"architecture": {"layers": [
        {"type": "conv2d", "name": "c", "in_channels": 2, "out_channels": 3, "kernel_size": [3, 2], "activation": "tanh"},
        {"type": "dense", "name": "d", "in_features": 3 * 5 * 4, "out_features": 6, "activation": "silu",
         "bias": {"name": "normal", "std": 0.5}},
        {"type": "dense", "name": "o", "in_features": 6, "out_features": 4, "activation": "softmax", "bias": False},
    ]}, "scheme": "he_uniform", "bias": {"name": "uniform", "low": -0.3, "high": 0.3}, "dtype": dtype, "layout": layout,
        "seed": 11, "batch": 6, "spatial_size": [5, 4]}
    report = diagnose(doc)["results"][0]
    plan = plan_of({k: v for k, v in doc.items() if k not in ("batch", "spatial_size")})
    tensors = {t.name: t for t in plan.tensors}

    def torch_view(name):
        t = tensors[name]
        v = as_float(t.generate(), t.dtype).astype(np.float64)
        return v.transpose(np.argsort(t.spec.perm)) if v.ndim > 1 else v

    ws = [torch_view("c.weight"), torch_view("d.weight"), torch_view("o.weight")]
    bs = [torch_view("c.bias"), torch_view("d.bias"), None]
    assert ws[0].shape == (3, 2, 3, 2) and ws[1].shape == (6, 60)
    x, _ = dg.probe_streams(11, 6, (2, 5, 4), (4,))
    # an independent forward pass with the engine's values
    z0 = naive_conv(x, ws[0], bs[0], 1)
    a0 = np.tanh(z0)
    z1 = a0.reshape(6, -1) @ ws[1].T + bs[1]
    a1 = z1 / (1 + np.exp(-z1))
    z2 = a1 @ ws[2].T
    a2 = np.exp(z2) / np.exp(z2).sum(axis=1, keepdims=True)
    for lay, z, a in zip(report["layers"], (z0, z1, z2), (a0, a1, a2)):
        assert lay["pre_activation"]["std"] == pytest.approx(z.std(), rel=1e-9)
        assert lay["activation"]["mean"] == pytest.approx(a.mean(), rel=1e-9)
    assert report["layers"][1]["bias"]["scheme"]["name"] == "normal"
    assert report["layers"][0]["bias"]["scheme"]["name"] == "uniform"
    assert report["layers"][2]["bias"] is None and report["layers"][2]["bias_gradient_norm"] is None
    assert report["layers"][1]["weight"]["empirical"]["std"] == pytest.approx(ws[1].std(), rel=1e-12)


# --------------------------------------------------------------------------- conv correctness

def naive_conv(x, w, b, groups):
    """Direct loops: PyTorch Conv(stride 1, padding='same' (extra zero right), dilation 1, groups)."""
    B, C, *S = x.shape
    O, Cg, *K = w.shape
    Og = O // groups
    pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in K]
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out = np.zeros((B, O, *S))
    for bi, o in itertools.product(range(B), range(O)):
        g = o // Og
        for pos in itertools.product(*[range(s) for s in S]):
            acc = 0.0 if b is None else b[o]
            for c in range(Cg):
                for t in itertools.product(*[range(k) for k in K]):
                    acc += w[(o, c, *t)] * xp[(bi, g * Cg + c, *[p + ti for p, ti in zip(pos, t)])]
            out[(bi, o, *pos)] = acc
    return out


CONV_CASES = [  # (C, O, groups, kernel, spatial)
    (3, 4, 1, (3,), (7,)),
    (4, 6, 2, (4,), (5,)),       # even kernel: PyTorch puts the extra zero on the right
    (2, 2, 2, (1,), (3,)),
    (3, 5, 1, (3, 3), (4, 5)),
    (4, 4, 4, (2, 3), (3, 4)),   # depthwise, even/odd kernel
    (6, 4, 2, (5, 5), (3, 3)),   # kernel larger than the input
]


@pytest.mark.parametrize("C,O,groups,kernel,spatial", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_forward_matches_the_naive_reference(C, O, groups, kernel, spatial, bias):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, C, *spatial))
    w = rng.standard_normal((O, C // groups, *kernel))
    b = rng.standard_normal(O) if bias else None
    np.testing.assert_allclose(network.conv_forward(x, w, b, groups), naive_conv(x, w, b, groups), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C,O,groups,kernel,spatial", CONV_CASES)
def test_conv_backward_is_the_adjoint_of_forward(C, O, groups, kernel, spatial):
    """<delta, conv(x, w)> is bilinear: its gradients in x and w are exact, so compare with
    the forward pass on basis directions."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, C, *spatial))
    w = rng.standard_normal((O, C // groups, *kernel))
    delta = rng.standard_normal((2, O, *spatial))
    dx, dW, db = network.conv_backward(x, w, delta, groups)

    def f(xx, ww):
        return float(np.sum(delta * network.conv_forward(xx, ww, None, groups)))

    for idx in itertools.islice(np.ndindex(*x.shape), 0, None, 3):
        e = np.zeros_like(x)
        e[idx] = 1.0
        assert dx[idx] == pytest.approx(f(e, w), abs=1e-10)
    for idx in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[idx] = 1.0
        assert dW[idx] == pytest.approx(f(x, e), abs=1e-10)
    np.testing.assert_allclose(db, delta.sum(axis=tuple(i for i in range(delta.ndim) if i != 1)))


def test_conv_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 4, 6, 5))
    w = rng.standard_normal((6, 2, 3, 3))
    delta = rng.standard_normal((7, 6, 6, 5))
    whole = network.conv_forward(x, w, None, 2), network.conv_backward(x, w, delta, 2)
    monkeypatch.setattr(network, "CONV_CHUNK_BYTES", 1)     # one example per chunk
    chunked = network.conv_forward(x, w, None, 2), network.conv_backward(x, w, delta, 2)
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-13, atol=1e-13)
    for a, b in zip(chunked[1], whole[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(9)
    for C, O, groups, kernel, spatial in CONV_CASES:
        x = rng.standard_normal((3, C, *spatial))
        w = rng.standard_normal((O, C // groups, *kernel))
        b = rng.standard_normal(O)
        xt = torch.tensor(x)
        with torch.no_grad():
            # explicit asymmetric padding = what padding='same' does (without its even-kernel warning)
            pad = [p for k in reversed(kernel) for p in ((k - 1) // 2, k - 1 - (k - 1) // 2)]
            conv = F.conv1d if len(kernel) == 1 else F.conv2d
            ref = conv(F.pad(xt, pad), torch.tensor(w), torch.tensor(b), groups=groups).numpy()
        np.testing.assert_allclose(network.conv_forward(x, w, b, groups), ref, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- gradient check

GRAD_NETS = {
    "dense": [("dense", 5, 4, "tanh"), ("dense", 4, 6, "gelu"), ("dense", 6, 3, "softmax")],
    "dense-mixed": [("dense", 3, 5, "elu"), ("dense", 5, 5, "selu"), ("dense", 5, 4, "silu"),
                    ("dense", 4, 4, {"name": "leaky_relu", "negative_slope": 0.2}), ("dense", 4, 2, "sigmoid")],
    "conv": [("conv1d", 2, 3, "tanh", (3,), 1), ("conv1d", 3, 3, "relu", (2,), 3), ("dense", 3 * 5, 2, "linear")],
    "conv2d": [("conv2d", 2, 4, "gelu", (3, 2), 2), ("conv2d", 4, 2, "sigmoid", (1, 3), 1), ("dense", 2 * 3 * 3, 3, "softmax")],
}


def _grad_doc(spec, spatial):
    layers = []
    for i, s in enumerate(spec):
        if s[0] == "dense":
            layers.append({"type": "dense", "name": f"l{i}", "in_features": s[1], "out_features": s[2], "activation": s[3]})
        else:
            layers.append({"type": s[0], "name": f"l{i}", "in_channels": s[1], "out_channels": s[2], "activation": s[3],
                           "kernel_size": list(s[4]), "groups": s[5]})
    doc = {"architecture": {"layers": layers}, "scheme": "xavier_normal", "bias": {"name": "normal", "std": 0.3},
           "seed": 4, "batch": 3, "dtype": "float64"}
    if spatial:
        doc["spatial_size"] = spatial
    return doc


@pytest.mark.parametrize("net", GRAD_NETS)
def test_backward_matches_finite_differences(net):
    spatial = {"conv": [5], "conv2d": [3, 3]}.get(net)
    probe = probe_of(_grad_doc(GRAD_NETS[net], spatial))
    rng = np.random.default_rng(10)
    ws = [rng.standard_normal(st.weight_shape) * 0.7 for st in probe.stages]
    bs = [rng.standard_normal(st.units) * 0.3 for st in probe.stages]
    x = rng.standard_normal((probe.batch, *probe.input_shape))
    G = rng.standard_normal((probe.batch, *probe.stages[-1].out_shape))

    def loss(ws_, bs_, x_):
        out = network.Network(probe.stages, ws_, bs_).run_forward(x_)
        return float(np.sum(G * out)) / len(x_)

    net_ = network.Network(probe.stages, ws, bs)
    net_.run_forward(x)
    steps = list(net_.backward(G))
    grads = {i: (dW, db) for i, _, _, dW, db in steps if i >= 0}
    assert steps[-1][0] == -1
    dx = steps[-1][1]
    eps = 1e-6
    for i in range(len(ws)):
        for idx in np.ndindex(*ws[i].shape):
            wp = [w.copy() for w in ws]
            wm = [w.copy() for w in ws]
            wp[i][idx] += eps
            wm[i][idx] -= eps
            num = (loss(wp, bs, x) - loss(wm, bs, x)) / (2 * eps)
            assert grads[i][0][idx] == pytest.approx(num, rel=1e-5, abs=1e-8), (net, i, idx)
        for j in range(len(bs[i])):
            bp = [b.copy() for b in bs]
            bm = [b.copy() for b in bs]
            bp[i][j] += eps
            bm[i][j] -= eps
            num = (loss(ws, bp, x) - loss(ws, bm, x)) / (2 * eps)
            assert grads[i][1][j] == pytest.approx(num, rel=1e-5, abs=1e-8)
    # the gradient w.r.t. the input (per example: dl_b/dx_b = B * d(mean loss)/dx_b)
    for idx in itertools.islice(np.ndindex(*x.shape), 0, None, 2):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = (loss(ws, bs, xp) - loss(ws, bs, xm)) / (2 * eps) * len(x)
        assert dx[idx] == pytest.approx(num, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("act", ["linear", "relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid", "selu", "softmax"])
def test_activation_derivatives(act):
    a = Activation(act, 0.1)
    rng = np.random.default_rng(12)
    z = rng.standard_normal((4, 5)) * 2
    z[np.abs(z) < 1e-3] = 0.5                         # keep off the ReLU kink
    g = rng.standard_normal((4, 5))
    got = network.activation_backward(a, z, network.activate(a, z), g)
    eps = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = np.sum(g * (network.activate(a, zp) - network.activate(a, zm))) / (2 * eps)
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


def test_activations_match_torch():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    z = np.linspace(-6, 6, 121).reshape(11, 11)
    zt = torch.tensor(z)
    ref = {"relu": F.relu(zt), "leaky_relu": F.leaky_relu(zt, 0.01), "elu": F.elu(zt), "gelu": F.gelu(zt),
           "silu": F.silu(zt), "tanh": torch.tanh(zt), "sigmoid": torch.sigmoid(zt), "selu": F.selu(zt),
           "softmax": F.softmax(zt, dim=1), "linear": zt}
    for name, r in ref.items():
        np.testing.assert_allclose(network.activate(Activation(name), z), r.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)


# --------------------------------------------------------------------------- bad input

def dense(i, o, act="relu", **kw):
    return {"type": "dense", "in_features": i, "out_features": o, "activation": act, **kw}


def conv(t, i, o, k, act="relu", **kw):
    return {"type": t, "in_channels": i, "out_channels": o, "kernel_size": k, "activation": act, **kw}


def arch(*layers, **doc):
    return {"architecture": {"layers": list(layers)}, **doc}


BAD = [
    (arch(dense(4, 4), {"type": "lstm", "input_size": 4, "hidden_size": 4}), "architecture.layers.1.type", "diagnose runs"),
    (arch({"type": "conv_transpose2d", "in_channels": 2, "out_channels": 2, "kernel_size": 3}),
     "architecture.layers.0.type", "diagnose runs"),
    (arch({"type": "conv3d", "in_channels": 2, "out_channels": 2, "kernel_size": 3}), "architecture.layers.0.type", "conv2d"),
    (arch(dense(4, 4, "swish")), "architecture.layers.0.activation", "Must be one of: linear"),
    (arch(dense(4, 4, "softmax"), dense(4, 2)), "architecture.layers.0.activation", "last layer"),
    (arch(dense(4, 5), dense(4, 2)), "architecture.layers.1.in_features", "output size 5"),
    (arch(conv("conv2d", 3, 8, 3), conv("conv2d", 4, 8, 3)), "architecture.layers.1.in_channels", "out_channels 8"),
    (arch(dense(4, 4), conv("conv1d", 4, 4, 3)), "architecture.layers.1.type", "cannot follow a dense layer"),
    (arch(conv("conv2d", 3, 4, 3), conv("conv1d", 4, 4, 3)), "architecture.layers.1.type", "cannot follow a conv2d"),
    (arch(conv("conv1d", 3, 4, 3), dense(100, 2)), "architecture.layers.1.in_features", "flattened output size 128"),
    (arch(conv("conv2d", 3, 4, 3), dense(4, 2), spatial_size=[2, 2]), "architecture.layers.1.in_features", "16"),
    (arch(conv("conv2d", 3, 4, 3, groups=2)), "architecture.layers.0.groups", "divide"),
    (arch(dense(4, 4), batch=1), "batch", "greater than or equal to 2"),
    (arch(dense(4, 4), batch=dg.BATCH_MAX + 1), "batch", f"less than or equal to {dg.BATCH_MAX}"),
    (arch(dense(4, 4), batch=True), "batch", "integer"),
    (arch(dense(4, 4), batch="8"), "batch", "integer"),
    (arch(dense(4, 4), schemes=[]), "schemes", "Length must be between 1"),
    (arch(dense(4, 4), schemes="he_normal"), "schemes", "list"),
    (arch(dense(4, 4), schemes=["he_normal"] * (dg.SCHEMES_MAX + 1)), "schemes", f"between 1 and {dg.SCHEMES_MAX}"),
    (arch(dense(4, 4), schemes=["he_normal", "nope"]), "schemes.1.name", "unknown scheme"),
    (arch(dense(4, 4), schemes=["he_normal", {"name": "normal", "std": -1}]), "schemes.1.std", "> 0"),
    (arch(dense(4, 4), schemes=["he_normal", "dirac"]), "schemes.1", "dirac"),
    (arch(dense(4, 4), scheme="nope"), "scheme.name", "unknown scheme"),
    (arch(dense(4, 4), tensors=["0.weight"]), "tensors", "whole network"),
    (arch(dense(4, 4), spatial_size=[8]), "spatial_size", "first layer is a conv"),
    (arch(conv("conv2d", 3, 4, 3), spatial_size=[8]), "spatial_size", "2 integers"),
    (arch(conv("conv2d", 3, 4, 3), spatial_size=[8, 0]), "spatial_size", "between 1"),
    (arch(dense(4, 4), probe=3), "probe", "Unknown field"),
    (arch(), "architecture.layers", "Length must be between 1"),
    ([1, 2], "_schema", "JSON object"),
]


@pytest.mark.parametrize("doc,field,words", BAD, ids=[f"{i}-{c[1]}" for i, c in enumerate(BAD)])
def test_bad_input_names_the_field(doc, field, words):
    got_field, message, limit = problem(doc)
    assert got_field == field
    assert words in message
    assert limit is None


# --------------------------------------------------------------------------- cost and limits

def test_cost_is_estimated_from_the_document():
    doc = arch(conv("conv2d", 3, 8, [3, 3], groups=1), conv("conv2d", 8, 8, [1, 3], groups=2), dense(8 * 4 * 4, 5),
               spatial_size=[4, 4], batch=10, schemes=["he_normal", "xavier_uniform", "zeros"])
    c = dg.estimate_cost(probe_of(doc))
    fwd = 8 * 16 * 3 * 9 + 8 * 16 * 4 * 3 + 5 * 128   # per example: outputs x (in/groups * kernel)
    outputs = 8 * 16 + 8 * 16 + 5   # per example: every layer's activation values (elementwise work)
    assert c["multiply_adds"] == 3 * 10 * (3 * fwd + dg.cost.ELEMENTWISE_WORK * outputs)
    assert c["weight_elements"] == 3 * (8 * 3 * 9 + 8 + 8 * 4 * 3 + 8 + 5 * 128 + 5)
    assert c["peak_bytes"] > 8 * 10 * (48 + 2 * (128 + 128 + 5)) + 3 * 3 * dg.cost.RESULT_BYTES_PER_LAYER
    bigger = dg.estimate_cost(probe_of({**doc, "batch": 20}))
    assert bigger["multiply_adds"] == 2 * c["multiply_adds"] and bigger["peak_bytes"] > c["peak_bytes"]


@pytest.mark.parametrize("limits,name,field", [
    ({"max_batch": 8}, "diagnose_max_batch", "batch"),
    ({"max_cost": 1000}, "diagnose_max_cost", "architecture"),
    ({"max_bytes": 1000}, "diagnose_max_bytes", "architecture"),
])
def test_limits_are_checked_before_anything_is_drawn(limits, name, field, monkeypatch):
    from service.core.plan import TensorPlan

    def boom(*a, **k):
        raise AssertionError("drew values before checking the limits")

    monkeypatch.setattr(TensorPlan, "generate", boom)
    doc = mlp("relu", depth=3, width=32, batch=16)
    with pytest.raises(SpecError) as e:
        diagnose(doc, limits=limits)
    assert e.value.limit == name and e.value.field == field
    assert e.value.requested > e.value.allowed == next(iter(limits.values()))


def test_unknown_limit_keys_are_a_programming_error():
    with pytest.raises(ValueError):
        dg.check_limits({"batch": 1}, {"max_widgets": 3})


def test_fingerprint_follows_the_normalized_request():
    a = probe_of(mlp("relu", depth=2, width=8, batch=16, schemes=["kaiming_normal"]))
    b = probe_of(mlp("relu", depth=2, width=8, batch=16, schemes=[{"name": "he_normal", "mode": "fan_in"}]))
    c = probe_of(mlp("relu", depth=2, width=8, batch=17, schemes=["he_normal"]))
    assert dg.fingerprint(a) == dg.fingerprint(b) != dg.fingerprint(c)


def test_limits_that_fit_pass():
    doc = mlp("relu", depth=2, width=8, batch=16)
    c = dg.estimate_cost(probe_of(doc))
    out = diagnose(doc, limits={"max_batch": 16, "max_cost": c["multiply_adds"],
                                   "max_bytes": c["peak_bytes"]})
    assert out["cost"] == c


PEAK_CASES = {
    "cnn": arch(conv("conv2d", 3, 16, 3), conv("conv2d", 16, 16, 3), dense(16 * 16 * 16, 64, "tanh"),
                batch=32, schemes=["he_normal"]),
    "mlp": mlp("tanh", depth=10, width=256, batch=256, schemes=["he_normal", "zeros"]),
    "orthogonal": arch(dense(1024, 1024, "tanh"), dense(1024, 1024, "tanh"), batch=8, schemes=["orthogonal"]),
    "bf16-conv1d": arch(conv("conv1d", 8, 32, 5, "gelu"), conv("conv1d", 32, 32, 4, "gelu", groups=4),
                        batch=64, spatial_size=48, dtype="bfloat16", schemes=["he_uniform"]),
}


@pytest.mark.parametrize("case", PEAK_CASES)
def test_peak_bytes_bounds_the_real_peak(case):
    """The estimate is an upper bound of what NumPy really allocates (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    doc = PEAK_CASES[case]
    est = dg.estimate_cost(probe_of(doc))["peak_bytes"]
    tracemalloc.start()
    try:
        diagnose(doc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= est, (peak, est)
    assert est < 5 * peak                       # and not absurdly loose


# --------------------------------------------------------------------------- overflow

def test_overflow_is_reported_as_exploding_with_strict_json():
    doc = mlp("linear", depth=60, width=8, schemes=[{"name": "normal", "std": 1e5}], batch=4)
    r = diagnose(doc)["results"][0]
    assert r["verdict"] == "exploding"
    over = [lay for lay in r["layers"] if lay["overflow"]]
    assert len(over) == 1
    k = r["layers"].index(over[0])
    assert all(not lay["ran"] for lay in r["layers"][k + 1:])
    assert all(lay["gradient_std"] is None for lay in r["layers"])
    assert "overflows" in r["explanation"]
    json.dumps(r, allow_nan=False)
