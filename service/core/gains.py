"""Activations and PyTorch's ``calculate_gain`` table.

The gain of a nonlinearity is the factor by which the weights' std must grow so that the
signal's variance survives the nonlinearity (He et al. 2015 for ReLU; PyTorch's table for the
rest). It is used two ways here: the ``gain`` parameter of variance-scaling schemes accepts a
nonlinearity name, and ``auto`` puts PyTorch's tanh gain on Xavier (``core.activations``).
"""

from __future__ import annotations

import math

from .errors import SpecError

#: Nonlinearity names ``gain`` accepts: PyTorch's ``calculate_gain`` names.
GAIN_NAMES = (
    "linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)

DEFAULT_LEAKY_SLOPE = 0.01


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain``: linear/conv/sigmoid 1, tanh 5/3,
    relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)) (slope 0.01 by default), selu 3/4."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        if nonlinearity not in GAIN_NAMES:
            raise SpecError("", f"unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(GAIN_NAMES)}")
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = DEFAULT_LEAKY_SLOPE if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise SpecError("", f"unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(GAIN_NAMES)}")
