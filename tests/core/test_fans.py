"""Fans for every layer type in both layouts, against values worked out by hand.

PyTorch: weight (out, in/groups, *k) -> fan_in = in/groups * prod(k), fan_out = out * prod(k);
ConvTranspose weight (in, out/groups, *k) -> fan_in = out/groups * prod(k), fan_out = in * prod(k);
Keras on its own kernel layout gives the same numbers. Embedding follows PyTorch (fan_in = dim).
"""

import pytest

from tests.helpers import plan_of
from tests.helpers import ZOO

# name: (torch shape, keras shape, fan_in, fan_out)
EXPECTED = {
    "fc1.weight": ((256, 784), (784, 256), 784, 256),
    "fc1.bias": ((256,), (256,), 784, 256),
    "conv.weight": ((8, 2, 3, 5), (3, 5, 2, 8), 2 * 15, 8 * 15),
    "conv.bias": ((8,), (8,), 30, 120),
    "up.weight": ((6, 2, 3), (3, 2, 6), 2 * 3, 6 * 3),
    "emb.weight": ((100, 16), (100, 16), 16, 100),
    "lstm.weight_ih": ((128, 16), (16, 128), 16, 128),
    "lstm.weight_hh": ((128, 32), (32, 128), 32, 128),
    "lstm.bias_ih": ((128,), (128,), 16, 128),
    "lstm.bias_hh": ((128,), (128,), 32, 128),
    "gru.weight_ih": ((24, 32), (32, 24), 32, 24),
    "gru.weight_hh": ((24, 8), (8, 24), 8, 24),
    "rnn.weight_ih": ((8, 8), (8, 8), 8, 8),
    "bn.weight": ((8,), (8,), 8, 8),
    "ln.weight": ((4, 8), (4, 8), 32, 32),
    "attn.q_proj.weight": ((16, 16), (16, 16), 16, 16),
    "attn.out_proj.bias": ((16,), (16,), 16, 16),
    "pos": ((1, 10, 16), (1, 10, 16), 16, 16),
}


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_fans_and_shapes(layout):
    plan = plan_of({**ZOO, "layout": layout})
    by_name = {t.name: t.theory() for t in plan.selected}
    for name, (tshape, kshape, fi, fo) in EXPECTED.items():
        th = by_name[name]
        assert th["shape"] == list(tshape if layout == "torch" else kshape), name
        assert (th["fan_in"], th["fan_out"]) == (fi, fo), name


def test_tensor_names_follow_pytorch():
    names = [t.name for t in plan_of(ZOO).selected]
    assert names[:4] == ["fc1.weight", "fc1.bias", "conv.weight", "conv.bias"]
    assert [n for n in names if n.startswith("lstm")] == ["lstm.weight_ih", "lstm.weight_hh", "lstm.bias_ih", "lstm.bias_hh"]
    assert [n for n in names if n.startswith("attn")] == [
        f"attn.{p}_proj.{k}" for p in ("q", "k", "v", "out") for k in ("weight", "bias")]
    assert "emb.bias" not in names


def test_default_layer_names_are_indices():
    plan = plan_of({"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 3},
                                                   {"type": "dense", "in_features": 3, "out_features": 1}]}})
    assert [t.name for t in plan.selected] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_embedding_says_which_rule_it_follows():
    th = {t.name: t.theory() for t in plan_of(ZOO).selected}["emb.weight"]
    assert "PyTorch" in th["fan_note"] and "Keras" in th["fan_note"]


def test_keras_layout_matches_keras_fan_rule():
    """Keras's own rule on its kernel layout: rf = prod(shape[:-2]), fan_in = shape[-2]*rf, fan_out = shape[-1]*rf."""
    plan = plan_of({**ZOO, "layout": "keras"})
    for t in plan.selected:
        if t.spec.role == "weight" and len(t.shape) >= 2 and t.spec.layer_type != "embedding":
            rf = 1
            for k in t.shape[:-2]:
                rf *= k
            assert (t.spec.fan_in, t.spec.fan_out) == (t.shape[-2] * rf, t.shape[-1] * rf), t.name


def test_torch_layout_matches_torch_fan_rule():
    plan = plan_of(ZOO)
    for t in plan.selected:
        if t.spec.role == "weight" and len(t.shape) >= 2:
            rf = 1
            for k in t.shape[2:]:
                rf *= k
            assert (t.spec.fan_in, t.spec.fan_out) == (t.shape[1] * rf, t.shape[0] * rf), t.name


def test_fans_against_torch_itself():
    torch = pytest.importorskip("torch", reason="torch (CPU, test-only) is not installed")
    from torch.nn.init import _calculate_fan_in_and_fan_out as fans

    plan = plan_of(ZOO)
    for t in plan.selected:
        if t.spec.role == "weight" and len(t.shape) >= 2:
            assert fans(torch.empty(t.shape)) == (t.spec.fan_in, t.spec.fan_out), t.name
