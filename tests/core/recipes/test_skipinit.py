"""``skipinit`` (De & Smith 2020): every residual gain at 0, every other weight by the base scheme, exactly
as that scheme alone draws it (same seed, same bytes)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import plan_of

LAYERS = [
    {"type": "conv2d", "name": "stem", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "role": "input"},
    {"type": "conv2d", "name": "b0.conv1", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "role": "hidden"},
    {"type": "conv2d", "name": "b0.conv2", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
     "role": "residual_out"},
    {"type": "tensor", "name": "b0.alpha", "shape": [1], "role": "residual_gain"},
    {"type": "dense", "name": "fc", "in_features": 8, "out_features": 10, "role": "readout"},
]


@pytest.mark.parametrize("base", ["he_normal", "xavier_uniform", "orthogonal"])
def test_gains_start_at_zero_and_the_rest_is_the_base_scheme(base):
    ours = plan_of({"architecture": {"layers": LAYERS}, "scheme": {"name": "skipinit", "base": base}, "seed": 5})
    # the same tensors at the same positions (each tensor's stream is seeded by its position), the gain left out
    rest = [layer if layer["name"] != "b0.alpha" else {**layer, "scheme": "zeros"} for layer in LAYERS]
    plain = plan_of({"architecture": {"layers": rest}, "scheme": base, "bias": "zeros", "seed": 5})
    for a, b in zip(ours.tensors, plain.tensors, strict=True):
        assert a.chosen_by == "skipinit"
        if a.name == "b0.alpha":
            assert a.scheme["name"] == "zeros" and not a.generate().any() and "starts at 0" in a.reason
        else:
            assert np.array_equal(a.generate(), b.generate()), a.name


def test_without_gains_the_reason_says_so():
    plan = plan_of({"architecture": {"layers": LAYERS[:3]}, "scheme": "skipinit"})
    assert all("no layer has role residual_gain" in t.reason for t in plan.tensors if t.spec.role == "weight")
