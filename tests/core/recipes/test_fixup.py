"""``fixup`` against the authors' code (hongyi-zhang/Fixup: fixup_resnet_cifar.py's FixupResNet and
fixup_resnet_imagenet.py's Bottleneck init, written here as they have it): the std their code passes to
``nn.init.normal_`` (and the 0 to ``constant_``) for every parameter, against the plan's.

The authors' stem convolution keeps PyTorch's default init; the recipe gives it He (the paper's
"standard method"), so the stem is not compared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from service.core import SpecError
from tests.helpers import plan_of


class Block(nn.Module):
    """A Fixup residual block, its m convolutions (the last closes the branch) and its scalar multiplier."""

    def __init__(self, planes: int, m: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(planes, planes, 3, padding=1, bias=False) for _ in range(m))
        self.scale = nn.Parameter(torch.ones(1))


class FixupNet(nn.Module):
    def __init__(self, blocks: int, m: int, planes: int = 8, classes: int = 10):
        super().__init__()
        self.num_layers = blocks
        self.conv1 = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        self.layers = nn.ModuleList(Block(planes, m) for _ in range(blocks))
        self.fc = nn.Linear(planes, classes)

    def authors_init(self):
        """fixup_resnet_cifar.py (m = 2) and fixup_resnet_imagenet.py (m = 3): He with fan_out x L^(-1/(2m-2))."""
        for block in self.layers:
            m = len(block.convs)
            for conv in block.convs[:-1]:
                w = conv.weight
                nn.init.normal_(w, mean=0, std=np.sqrt(2 / (w.shape[0] * np.prod(w.shape[2:])))
                                * self.num_layers ** (-1 / (2 * m - 2)))
            nn.init.constant_(block.convs[-1].weight, 0)
        nn.init.constant_(self.fc.weight, 0)
        nn.init.constant_(self.fc.bias, 0)


def document(net: FixupNet, m: int, mode: str = "fan_out") -> dict:
    planes = net.conv1.out_channels
    conv = {"type": "conv2d", "in_channels": planes, "out_channels": planes, "kernel_size": 3, "bias": False}
    layers = [{**conv, "name": "conv1", "in_channels": 3, "role": "input"}]
    for i in range(len(net.layers)):
        for j in range(m):
            layers.append({**conv, "name": f"layers.{i}.convs.{j}", "role": "hidden" if j < m - 1 else "residual_out"})
        layers.append({"type": "tensor", "name": f"layers.{i}.scale", "shape": [1], "role": "residual_gain"})
    layers.append({"type": "dense", "name": "fc", "in_features": planes, "out_features": 10, "role": "readout"})
    return {"architecture": {"layers": layers}, "scheme": {"name": "fixup", "m": m, "mode": mode}}


def authors_stds(net: FixupNet, monkeypatch) -> dict:
    """The std the authors' init passes to torch for each parameter (0 for ``constant_(w, 0)``)."""
    stds = {}
    normal, constant = nn.init.normal_, nn.init.constant_

    def record_normal(w, mean=0.0, std=1.0):
        stds[id(w)] = float(std)
        return normal(w, mean, std)

    def record_constant(w, value):
        stds[id(w)] = abs(float(value))
        return constant(w, value)

    monkeypatch.setattr(nn.init, "normal_", record_normal)
    monkeypatch.setattr(nn.init, "constant_", record_constant)
    net.authors_init()
    return {name: stds[id(p)] for name, p in net.named_parameters() if id(p) in stds}


@pytest.mark.parametrize("blocks,m", [(3, 2), (16, 2), (4, 3), (27, 3)])
def test_every_weight_has_the_authors_std(blocks, m, monkeypatch):
    net = FixupNet(blocks, m)
    theirs = authors_stds(net, monkeypatch)
    plan = plan_of(document(net, m))
    ours = {t.name: t for t in plan.tensors}
    checked = 0
    for name, p in net.named_parameters():
        if name == "conv1.weight":
            continue
        if name.endswith(".scale"):
            assert ours[name].scheme["name"] == "ones" and p.item() == 1.0
            continue
        t = ours[name]
        want = theirs[name]
        assert math.isclose(math.sqrt(t.distribution.variance()), want, rel_tol=1e-12), (name, t.reason)
        assert t.chosen_by == "fixup"
        checked += 1
    assert checked == blocks * m + 2  # the branches' convolutions, fc's weight and bias


def test_the_scale_and_its_reason():
    plan = plan_of(document(FixupNet(16, 2), 2, mode="fan_in"))
    t = next(t for t in plan.tensors if t.name == "layers.0.convs.0.weight")
    c = 16 ** -0.5
    assert math.isclose(t.distribution.variance(), c * c * 2 / (8 * 9), rel_tol=1e-12)
    assert "L^(-1/(2m-2)) = 16^(-1/2) = 0.25" in t.reason and "L = 16 residual branches" in t.reason
    stem = next(t for t in plan.tensors if t.name == "conv1.weight")
    assert math.isclose(stem.distribution.variance(), 2 / 27, rel_tol=1e-12) and "unscaled" in stem.reason


def test_L_overrides_the_count():
    doc = document(FixupNet(2, 2), 2)
    doc["scheme"]["L"] = 100
    t = next(t for t in plan_of(doc).tensors if t.name == "layers.0.convs.0.weight")
    assert math.isclose(math.sqrt(t.distribution.variance()), math.sqrt(2 / 72) * 0.1, rel_tol=1e-12)


def test_no_residual_branch_is_an_error_naming_L():
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 4, "out_features": 4, "role": "hidden"}]},
           "scheme": "fixup"}
    with pytest.raises(SpecError) as e:
        plan_of(doc)
    assert e.value.field == "scheme.L" and "residual branch" in e.value.message
