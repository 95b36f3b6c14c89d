r"""LSUV, layer-sequential unit-variance calibration (Mishkin & Matas, "All you need is a good init",
ICLR 2016), as the ``lsuv`` package 0.3.0 implements it, on the diagnose engine's network.

For each layer L in order, with the layers before it already calibrated and the probe batch X::

    z = W_L a_{L-1} + b_L                   # the layer's output, before its activation
    s = std(z)                              # over every element (batch, units, positions), Bessel-corrected
    while |s - 1| > tolerance and iterations < max_iterations:
        W_L <- W_L / (s + 1e-8)             # the weights only: the bias is not rescaled
        s = std(z)                          # z recomputed with the new W_L

``factor`` is the product of the rescalings of a layer, ``iterations`` their number.

How this follows lsuv 0.3.0 (``lsuv/lsuvinit.py``, ``LSUVinit``), and where both differ from the paper:

- the statistic is ``torch.Tensor.std()`` of the hooked module's output (a Linear's or Conv's, so
  before the activation), over all its elements, unbiased (N - 1); the paper states the criterion on
  the variance, |Var(B_L) - 1| < Tol_var, and divides by sqrt(Var). lsuv (and this) tests the *std*
  against the tolerance: with the default 0.1 that accepts variances in [0.81, 1.21], not [0.9, 1.1];
- each step multiplies by ``1 / (std + 1e-8)`` (lsuv's epsilon, kept: it decides the factor of a
  layer whose outputs are nearly constant; the paper divides by sqrt(Var) alone);
- the paper runs each forward pass on a mini-batch of the training data; lsuv's
  ``lsuv_with_singlebatch`` reuses one batch throughout, as this does with its seeded probe batch
  (standard-normal inputs: data-free);
- lsuv's loop counts ``attempts`` after each rescaling and stops when ``attempts > max_attempts``, so
  ``max_attempts = 10`` allows 11 rescalings; here ``max_iterations`` is the most rescalings (the
  paper's T_max): ``max_iterations = n + 1`` reproduces lsuv's ``max_attempts = n``;
- lsuv's ``do_orthonorm`` (its default) overwrites every weight with ``torch.nn.init.orthogonal_`` and
  every bias with 0 before it starts, as the paper's step 1 does; here the starting weights are the
  request's scheme (``orthogonal`` by default, and biases zero by default), so ``rng: "torch"`` with
  the default scheme is lsuv with ``do_orthonorm=True`` after ``torch.manual_seed(seed)`` and the
  model's construction;
- lsuv 0.3.0 counts the layers it walks past to find the one to rescale in a global counter that is
  reset only when a layer is done, so from the second rescaling of any layer but the first, its
  rescaling lands on the *first* layer's weights (a bug; invisible when every layer converges in one
  rescaling, as from its own orthogonal start with zero biases): this rescales the layer measured;
- neither lsuv nor the paper touches biases; ``bias_first`` (an option of this service) first shifts
  each output unit's bias by minus its mean on the probe batch, then rescales the weights (which
  moves the means again: the order changes the result);
- lsuv computes in float32 on the model's own tensors; this runs in float64 on the stored values, and
  rounds each rescaled weight to the request's dtype before measuring it, so the reported ``std`` is
  that of the weights returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dtypes import DType, as_float, to_storage
from ..errors import SpecError
from ..diagnose.network import Network, activate

#: lsuv 0.3.0's ``needed_std / (current_std + 1e-8)``.
EPS = 1e-8


@dataclass(frozen=True)
class LayerResult:
    """What calibrating one layer did: its weight factor, the rescalings, and its outputs' statistics."""

    name: str
    index: int
    factor: float
    iterations: int
    converged: bool
    std_before: float        # the layer's output std with the starting weights (bias shifted, if asked)
    std: float               # and after calibration
    mean: float              # the mean of its outputs after calibration
    bias_shifted: bool

    def document(self) -> dict:
        return {"name": self.name, "index": self.index, "factor": self.factor, "iterations": self.iterations,
                "converged": self.converged, "std_before": self.std_before, "std": self.std,
                "variance": self.std * self.std, "mean": self.mean, "bias_shifted": self.bias_shifted}


def output_std(z: np.ndarray) -> float:
    """The statistic LSUV drives to 1: ``torch.Tensor.std()``, over every element, Bessel-corrected."""
    return float(np.std(z, ddof=1))


def stored(values: np.ndarray, dtype: DType) -> np.ndarray:
    """``values`` (float64) as the request's dtype stores them, back in float64."""
    return as_float(to_storage(values.astype(dtype.compute), dtype), dtype).astype(np.float64)


def _unit_means(z: np.ndarray) -> np.ndarray:
    """(B, U, *S) -> (U,): each output unit's mean over the batch and its positions."""
    return z.mean(axis=tuple(i for i in range(z.ndim) if i != 1))


def calibrate(stages, weights: list, biases: list, dtypes: list, x: np.ndarray, *, tolerance: float,
              max_iterations: int, bias_first: bool) -> tuple[list, list]:
    """Calibrate every stage in order, from float64 weights (PyTorch's view) and biases (or None) and the
    probe batch ``x``; ``dtypes``: (weight dtype, bias dtype or None) per stage.

    Returns (a ``LayerResult`` per stage, the biases as shifted or None where unchanged). A layer
    whose outputs are constant or not finite on the probe batch cannot be rescaled to unit variance:
    SpecError (422) naming it."""
    net = Network(stages, weights, biases)
    results, shifted = [], []
    with np.errstate(all="ignore"):  # an overflow is found by isfinite and answered as such
        for i, st in enumerate(stages):
            if st.flatten:
                x = x.reshape(len(x), -1)
            wdt, bdt = dtypes[i]
            w0 = net.weights[i]
            new_bias = None
            if bias_first and net.biases[i] is not None:
                new_bias = stored(net.biases[i] - _unit_means(net.layer_forward(i, x)), bdt)
                net.biases[i] = new_bias
            z = net.layer_forward(i, x)
            s = std_before = output_std(z)
            factor, iterations = 1.0, 0
            while abs(s - 1.0) > tolerance and iterations < max_iterations:
                if not (math.isfinite(s) and s > 0):
                    break
                factor *= 1.0 / (s + EPS)
                net.weights[i] = stored(w0 * factor, wdt)
                z = net.layer_forward(i, x)
                s = output_std(z)
                iterations += 1
            if not (math.isfinite(s) and s > 0 and np.isfinite(net.weights[i]).all()):
                raise SpecError("calibration", f"layer {st.name!r}: its outputs on the probe batch have std {s:g} "
                                               f"(after {iterations} rescaling(s), factor {factor:g}), so no rescaling "
                                               f"of its weights gives them unit variance; start from another scheme")
            results.append(LayerResult(st.name, st.index, factor, iterations, abs(s - 1.0) <= tolerance,
                                       std_before, s, float(np.mean(z)), new_bias is not None))
            shifted.append(new_bias)
            net.weights[i] = None  # done: the caller scales its own starting values (held once, not twice)
            x = activate(st.activation, z)
    return results, shifted
