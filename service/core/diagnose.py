"""Signal-propagation diagnostics: why initialization matters, measured.

``diagnose(document)`` draws each requested scheme's weights with the engine (``build_plan``:
the same weights *and biases* ``POST /v1/weights`` returns, in the requested dtype), pushes a
seeded batch of standard-normal inputs forward through the network in float64 NumPy, then a
seeded standard-normal output gradient backward (no loss, no optimizer, no training), and
reports per scheme and per layer what the classic notes claim:

- zero init: the model does not train; a constant: symmetry, all units of a layer compute the
  same thing and update identically;
- small random weights: the signal and the gradients vanish;
- large random weights: tanh/sigmoid units saturate, or the signal and gradients explode;
- the rules that fix it: tanh -> Xavier, ReLU -> He.

The document
------------
The request document of ``POST /v1/weights`` (``architecture``, ``scheme``, ``seed``,
``dtype``, ``layout``, ``bias``, ``rng``; ``tensors`` does not apply: the whole network runs),
restricted to layers that can run forward: ``dense``, and ``conv1d`` / ``conv2d`` with stride
1, dilation 1 and PyTorch's ``padding="same"`` (for an even kernel the extra zero goes on the
right), any ``groups``. A conv layer followed by a dense layer is flattened (PyTorch's
``nn.Flatten``: channels first). Each layer's ``activation`` is one of linear (default),
relu, leaky_relu, elu, gelu (exact, erf), silu, tanh, sigmoid, selu, and softmax (over the
units, last layer only). Three fields are added:

- ``schemes``: 1 to ``SCHEMES_MAX`` scheme specs to compare (default ``[scheme]``); each
  replaces the request's ``scheme`` in turn (a layer's own ``scheme`` still wins);
- ``batch``: the probe batch size, ``BATCH_MIN`` to ``BATCH_MAX`` (default ``BATCH_DEFAULT``);
  servers lower the maximum through configuration;
- ``spatial_size``: the probe's spatial size when the first layer is a convolution
  (default 32 for conv1d, 16 x 16 for conv2d).

The probe input ``x`` (shape ``(batch, *input_shape)``) and the output gradient ``G`` are drawn
from ``SeedSequence(seed, spawn_key=(PROBE_KEY, 0 | 1))``, streams no tensor uses; both are the
same for every scheme of a request, so the schemes are compared on the same data. The
per-example loss is ``l_b = sum(G_b * out_b)``, so ``dl/dout = G`` per example; weight and bias
gradients are those of the batch mean ``(1/B) sum_b l_b`` (a minibatch gradient).

What is measured, per layer (``z`` pre-activation, ``a = f(z)`` activation)
---------------------------------------------------------------------------------
``pre_activation`` / ``activation``: mean and std over every element; ``pre_activation.unit_std``:
each unit's std over the batch (and positions, for convs; a conv unit is a channel), root
mean square over the units: how much the layer's response varies with its input (a bias
alone does not count as signal). ``activation.histogram``: ``HIST_BINS`` fixed-width bins over
the activation's range (tanh [-1, 1]; sigmoid and softmax [0, 1]; relu [0, max]; otherwise
[-max|a|, max|a|]). ``saturated_fraction`` (tanh and sigmoid only): the share of values with
|tanh| > 0.99, or sigmoid < 0.01 or > 0.99. ``dead_fraction`` (relu only): the share of units
that are zero for the whole batch. ``symmetric``: the layer has >= 2 units and all of them have
the same pre-activation on every example (to ``SYMMETRY_RTOL`` relative). Backward:
``gradient_std`` (std of dl/da), ``pre_activation_gradient_norm`` (root mean square over the
batch of each example's ||dl/dz||), ``weight_gradient_norm`` and ``bias_gradient_norm``
(Frobenius norms of the minibatch gradient).

Two ratios summarize propagation, each chosen so that the matching textbook initialization
keeps it at 1 whatever the layer widths (for fan_in variance scaling,
Var(z_l) = fan_in * Var(W) * E[a_{l-1}^2] forward and E||dz_{l-1}||^2 = fan_in * Var(W) *
E[f'(z)^2] * E||dz_l||^2 backward):

- ``forward_ratio`` = ``pre_activation.unit_std`` / the probe input's unit std (~1);
- ``backward_ratio`` = ``pre_activation_gradient_norm`` / that of the last layer. Measuring from
  the last layer's pre-activation leaves the output activation's own slope out (softmax over
  K classes divides the gradient by ~K by itself; that is not an initialization problem).

The verdict and its thresholds
------------------------------
Each layer gets ``problems``, a subset of:

- ``symmetric``: the layer is symmetric (above);
- ``saturated``: ``saturated_fraction > SATURATION_LIMIT`` (0.25);
- ``vanishing``: ``forward_ratio < 1/BAND`` or ``backward_ratio < 1/BAND`` (BAND = 10);
- ``exploding``: ``forward_ratio > BAND`` or ``backward_ratio > BAND``, or the forward pass
  overflowed float64.

The scheme's ``verdict`` is the most severe problem found in any layer, in the order
``symmetric`` (the network cannot learn at all, whatever the scale), ``saturated`` (large
weights on a bounded activation: saturation is the cause, the exploding or vanishing
numbers that come with it are the symptom), then ``vanishing`` or ``exploding`` (when both
show, the one farther from 1 in decades wins), else ``healthy``. ``first_bad_layer`` names
the first layer, counting from the input, that has the verdict's problem (null when
healthy). For a gradient problem that is the layer nearest the input, the one whose
weights receive the most distorted gradient.

Each result also lists ``warnings`` in words: the plan's per-tensor warnings (variance far
from the rule of thumb, constant weights), ``dead_relu`` when more than ``DEAD_WARN`` (half) of
a ReLU layer's units are zero for the whole batch (deep ReLU networks drift there even at He
init, as their examples grow alike: ~30% at depth 20), and ``saturation`` when between
``SATURATION_WARN`` (15%) and the saturated limit of a tanh/sigmoid layer's outputs are saturated.

Why these numbers (all deterministic for a seed; the margins are what make them robust):

- BAND = 10, one decade. A well-initialized network keeps both ratios within a factor ~2
  (fluctuations of a width-n layer are ~1/sqrt(n) per layer). A geometric decay r per layer
  leaves the band after ln(10)/ln(1/r) layers: ReLU with Xavier (r = 1/sqrt(2)) at layer ~7,
  tanh with N(0, 0.01^2) at width 256 (r = 0.16) at layer 2, a linear network at 1.5x the
  Xavier std at layer ~6. A 20-layer tanh network with Xavier at gain 1 (whose signal decays
  like 1/sqrt(depth), not geometrically: ~4x over 20 layers) stays inside, as it should: it
  trains. Short networks with a mild mismatch (5 ReLU layers with Xavier: 4x) are not
  flagged: they train too.
- SATURATION_LIMIT = 0.25. With pre-activation std s, the saturated share of tanh is
  2 * (1 - Phi(2.65 / s)): 0.11 for Xavier with PyTorch's tanh gain 5/3 (s ~ 1.7 at the first
  layer), 0.87 for N(0, 1) weights at width 256 (s = 16). 0.25 is reached at s ~ 2.3, about
  1.4x too large a std, and sits far from both.
- SYMMETRY_RTOL = 1e-9: identical weight rows give pre-activations equal to rounding
  (~1e-16 relative); any random init differs at order 1.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass

import numpy as np

from . import policies, schemes
from .distributions import Constant
from .dtypes import as_float
from .errors import SpecError
from .layers import CONV_DIMS, Activation, parse_activation
from .plan import DOC_FIELDS, Plan, TensorPlan, build_plan, engine_info, normalize_document

#: Bumped whenever a statistic, threshold or sentence changes (part of the ETag).
DIAGNOSE_VERSION = 1
VERDICTS = ("healthy", "vanishing", "exploding", "saturated", "symmetric")
RUNNABLE = ("dense", "conv1d", "conv2d")
DIAGNOSE_FIELDS = ("schemes", "batch", "spatial_size")

BATCH_MIN = 2
BATCH_MAX = 4096
BATCH_DEFAULT = 128
SCHEMES_MAX = 8
SPATIAL_MAX = 1024
SPATIAL_DEFAULT = {1: (32,), 2: (16, 16)}
HIST_BINS = 40

BAND = 10.0
SATURATION_LIMIT = 0.25
TANH_SATURATED = 0.99
SIGMOID_SATURATED = 0.01
SYMMETRY_RTOL = 1e-9
DEAD_WARN = 0.5
SATURATION_WARN = 0.15

#: spawn_key of the probe streams: beyond any tensor position (see ``streams``).
PROBE_KEY = 1 << 40
#: Temporaries of one layer step (in units of the widest layer's batch activations) the cost counts.
WORK_ARRAYS = 24
#: Conv im2col buffers are built per batch chunk of at most this many bytes.
CONV_CHUNK_BYTES = 16 << 20

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

THRESHOLDS = {"band": BAND, "saturation": SATURATION_LIMIT, "tanh_saturated": TANH_SATURATED,
              "sigmoid_saturated": [SIGMOID_SATURATED, 1 - SIGMOID_SATURATED], "symmetry_rtol": SYMMETRY_RTOL,
              "dead_warning": DEAD_WARN, "saturation_warning": SATURATION_WARN}


# --------------------------------------------------------------------------- the network

@dataclass(frozen=True)
class Stage:
    """One runnable layer: its shapes per example (channels first), kernel and activation."""

    index: int
    name: str
    type: str
    activation: Activation
    in_shape: tuple          # what the layer receives, per example (after any flatten)
    out_shape: tuple         # (units,) or (channels, *spatial)
    kernel: tuple = ()
    groups: int = 1
    flatten: bool = False    # the previous conv's output is flattened into this dense layer

    @property
    def units(self) -> int:
        return self.out_shape[0]

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    @property
    def weight_shape(self) -> tuple:
        if self.type == "dense":
            return (self.out_shape[0], self.in_shape[0])
        return (self.out_shape[0], self.in_shape[0] // self.groups, *self.kernel)

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward pass, per example."""
        return self.out_size * math.prod(self.weight_shape[1:])


def _same_pads(k: int) -> tuple[int, int]:
    """PyTorch's padding='same' for stride 1: k - 1 zeros, the extra one on the right."""
    left = (k - 1) // 2
    return left, k - 1 - left


def _chunk(n: int, per_example_bytes: int) -> int:
    return max(1, min(n, CONV_CHUNK_BYTES // max(1, per_example_bytes)))


def _im2col(x: np.ndarray, kernel: tuple, groups: int) -> np.ndarray:
    """(b, C, *S) -> (G, b*P, Cg*K): every 'same'-padded receptive field, grouped."""
    d = len(kernel)
    b, c, *spatial = x.shape
    xp = np.pad(x, [(0, 0), (0, 0)] + [_same_pads(k) for k in kernel])
    win = np.lib.stride_tricks.sliding_window_view(xp, kernel, axis=tuple(range(2, 2 + d)))  # (b, C, *S, *k)
    cg = c // groups
    win = win.reshape(b, groups, cg, *spatial, *kernel)
    order = (1, 0, *range(3, 3 + d), 2, *range(3 + d, 3 + 2 * d))  # (G, b, *S, Cg, *k)
    return win.transpose(order).reshape(groups, b * math.prod(spatial), cg * math.prod(kernel))


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, groups: int = 1) -> np.ndarray:
    """Cross-correlation as PyTorch's Conv{1,2}d(stride=1, padding='same', dilation=1, groups).

    x: (B, C, *S); w: (O, C/groups, *k); returns (B, O, *S)."""
    kernel = w.shape[2:]
    B, c, *spatial = x.shape
    o = w.shape[0]
    og = o // groups
    wg = w.reshape(groups, og, -1)                                  # (G, Og, Cg*K)
    out = np.empty((B, o, *spatial), dtype=np.float64)
    step = _chunk(B, 8 * math.prod(spatial) * c * math.prod(kernel))
    for s in range(0, B, step):
        cols = _im2col(x[s:s + step], kernel, groups)               # (G, b*P, Cg*K)
        z = np.matmul(cols, wg.transpose(0, 2, 1))                  # (G, b*P, Og)
        n = min(step, B - s)
        z = z.reshape(groups, n, *spatial, og)
        out[s:s + n] = np.moveaxis(z, -1, 1).reshape(groups * og, n, *spatial).swapaxes(0, 1)
    if b is not None:
        out += b.reshape(1, o, *([1] * len(spatial)))
    return out


def conv_backward(x: np.ndarray, w: np.ndarray, delta: np.ndarray, groups: int = 1, need_dx: bool = True):
    """Gradients of ``sum(delta * conv_forward(x, w, b))``: (dx or None, dW, db), summed over the batch."""
    kernel = w.shape[2:]
    d = len(kernel)
    B, c, *spatial = x.shape
    o = w.shape[0]
    og, cg = o // groups, c // groups
    wg = w.reshape(groups, og, -1)
    dw = np.zeros((groups, cg * math.prod(kernel), og))
    dx = np.empty_like(x) if need_dx else None
    pads = [_same_pads(k) for k in kernel]
    step = _chunk(B, 16 * math.prod(spatial) * c * math.prod(kernel))
    for s in range(0, B, step):
        n = min(step, B - s)
        cols = _im2col(x[s:s + n], kernel, groups)                   # (G, n*P, Cg*K)
        dg = delta[s:s + n].reshape(n, groups, og, -1)               # (n, G, Og, P)
        dg = dg.transpose(1, 0, 3, 2).reshape(groups, -1, og)        # (G, n*P, Og)
        dw += np.matmul(cols.transpose(0, 2, 1), dg)
        if need_dx:
            dcols = np.matmul(dg, wg)                                # (G, n*P, Cg*K)
            dcols = dcols.reshape(groups, n, *spatial, cg, *kernel)
            order = (1, 0, 2 + d, *range(2, 2 + d), *range(3 + d, 3 + 2 * d))  # (n, G, Cg, *S, *k)
            dcols = dcols.transpose(order).reshape(n, c, *spatial, *kernel)
            dxp = np.zeros((n, c, *[sp + k - 1 for sp, k in zip(spatial, kernel)]))
            for t in itertools.product(*[range(k) for k in kernel]):
                sl = (slice(None), slice(None), *[slice(ti, ti + sp) for ti, sp in zip(t, spatial)])
                dxp[sl] += dcols[(Ellipsis, *t)]
            crop = (slice(None), slice(None), *[slice(p[0], p[0] + sp) for p, sp in zip(pads, spatial)])
            dx[s:s + n] = dxp[crop]
    dW = dw.transpose(0, 2, 1).reshape(w.shape)
    db = delta.sum(axis=(0, *range(2, delta.ndim)))
    return dx, dW, db


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activate(act: Activation, z: np.ndarray) -> np.ndarray:
    name = act.name
    if name == "linear":
        return z.copy()
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, act.negative_slope * z)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if name == "gelu":
        from scipy.special import ndtr
        return z * ndtr(z)
    if name == "silu":
        return z * _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise SpecError("activation", f"cannot run activation {name!r}")  # pragma: no cover - validated before


def activation_backward(act: Activation, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dl/dz from dl/da = g (the derivative at 0 of relu is 0, as in PyTorch)."""
    name = act.name
    if name == "linear":
        return g.copy()
    if name == "relu":
        return np.where(z > 0, g, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, g, act.negative_slope * g)
    if name == "elu":
        return np.where(z > 0, g, g * np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, g, g * SELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "gelu":
        from scipy.special import ndtr
        return g * (ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi))
    if name == "silu":
        s = _sigmoid(z)
        return g * s * (1.0 + z * (1.0 - s))
    if name == "tanh":
        return g * (1.0 - a * a)
    if name == "sigmoid":
        return g * a * (1.0 - a)
    if name == "softmax":
        return a * (g - (a * g).sum(axis=1, keepdims=True))
    raise SpecError("activation", f"cannot run activation {name!r}")  # pragma: no cover


class Network:
    """Stages with their float64 weights (PyTorch view) and biases; forward and backward."""

    def __init__(self, stages, weights, biases):
        self.stages = list(stages)
        self.weights = [np.asarray(w, dtype=np.float64) for w in weights]
        self.biases = [None if b is None else np.asarray(b, dtype=np.float64) for b in biases]
        self.inputs: list = []
        self.z: list = []
        self.a: list = []

    def layer_forward(self, i: int, x: np.ndarray) -> np.ndarray:
        st, w, b = self.stages[i], self.weights[i], self.biases[i]
        if st.type == "dense":
            z = x.reshape(len(x), -1) @ w.T
            if b is not None:
                z += b
            return z
        return conv_forward(x, w, b, st.groups)

    def forward(self, x: np.ndarray, *, stop_at_overflow: bool = True):
        """Run every stage; yields (index, input, z, a) as it goes and keeps them for backward."""
        self.inputs, self.z, self.a = [], [], []
        for i, st in enumerate(self.stages):
            if st.flatten:
                x = x.reshape(len(x), -1)
            z = self.layer_forward(i, x)
            a = activate(st.activation, z)
            self.inputs.append(x)
            self.z.append(z)
            self.a.append(a)
            yield i, x, z, a
            if stop_at_overflow and not (np.isfinite(z).all() and np.isfinite(a).all()):
                return
            x = a

    def run_forward(self, x: np.ndarray) -> np.ndarray:
        for _ in self.forward(x, stop_at_overflow=False):
            pass
        return self.a[-1]

    def backward(self, g: np.ndarray):
        """From dl/d(output) = g per example, yield (index, dl/da, dl/dz, dW, db) from the last
        layer to the first (dW, db: gradients of the batch mean), then (-1, dl/dx, None, None, None)."""
        B = len(g)
        for i in range(len(self.stages) - 1, -1, -1):
            st = self.stages[i]
            delta = activation_backward(st.activation, self.z[i], self.a[i], g)
            x, w = self.inputs[i], self.weights[i]
            if st.type == "dense":
                dW = delta.T @ x / B
                db = delta.sum(axis=0) / B
                dx = delta @ w
            else:
                dx, dW, db = conv_backward(x, w, delta, st.groups)
                dW /= B
                db /= B
            yield i, g, delta, dW, (db if self.biases[i] is not None else None)
            if st.flatten:
                dx = dx.reshape(B, *self.stages[i - 1].out_shape)
            g = dx
        yield -1, g, None, None, None


# --------------------------------------------------------------------------- the request

@dataclass(frozen=True)
class Probe:
    """A validated diagnose request: the engine document, one Plan per scheme, the network."""

    document: dict           # the normalized engine document (the request's `scheme` kept)
    schemes: tuple           # normalized scheme specs, request order
    plans: tuple             # one Plan per scheme (nothing generated yet)
    batch: int
    spatial_size: tuple | None
    input_shape: tuple
    stages: tuple

    @property
    def seed(self) -> int:
        return self.document["seed"]

    def request(self) -> dict:
        """The normalized request, as echoed in the response."""
        out = {**self.document, "schemes": list(self.schemes), "batch": self.batch}
        out.pop("tensors", None)
        if self.spatial_size is not None:
            out["spatial_size"] = list(self.spatial_size)
        return out


def _int(value, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise SpecError(field, f"must be between {lo} and {hi}, got {value}")
    return value


def _scheme_field_error(e: SpecError, i: int, explicit: bool) -> SpecError:
    """An engine error about the request's ``scheme`` -> the same about ``schemes.i``."""
    if explicit and (e.field == "scheme" or e.field.startswith("scheme.")):
        return SpecError(f"schemes.{i}{e.field[len('scheme'):]}", e.message, limit=e.limit, requested=e.requested,
                         allowed=e.allowed)
    return e


def parse_request(doc) -> Probe:
    """Validate a diagnose document; SpecError names the first bad field. Draws nothing."""
    if not isinstance(doc, dict):
        raise SpecError("", "the request document must be a JSON object")
    unknown = sorted(set(doc) - set(DOC_FIELDS) - set(DIAGNOSE_FIELDS))
    if unknown:
        raise SpecError(unknown[0], f"unknown field (accepted: {', '.join(f for f in DOC_FIELDS if f != 'tensors')}, "
                                    f"{', '.join(DIAGNOSE_FIELDS)})")
    if doc.get("tensors") is not None:
        raise SpecError("tensors", "diagnose runs the whole network: tensor selection does not apply")
    engine_doc = {k: v for k, v in doc.items() if k in DOC_FIELDS}
    normalized = normalize_document(engine_doc)
    batch = _int(doc.get("batch", BATCH_DEFAULT), "batch", BATCH_MIN, BATCH_MAX)

    raw_schemes = doc.get("schemes")
    explicit = raw_schemes is not None
    if explicit:
        if not isinstance(raw_schemes, list) or not raw_schemes:
            raise SpecError("schemes", "must be a non-empty list of schemes (names or {name, ...} objects)")
        if len(raw_schemes) > SCHEMES_MAX:
            raise SpecError("schemes", f"at most {SCHEMES_MAX} schemes can be compared at once, got {len(raw_schemes)}")
        specs = []
        for i, s in enumerate(raw_schemes):
            try:
                specs.append(schemes.normalize_spec(s))
            except SpecError as e:
                raise e.with_prefix(f"schemes.{i}") from None
    else:
        specs = [normalized["scheme"]]

    plans = []
    for i, spec in enumerate(specs):
        try:
            plans.append(build_plan({**normalized, "scheme": spec}))
        except SpecError as e:
            raise _scheme_field_error(e, i, explicit) from None
    stages, input_shape, spatial = _stages(plans[0], doc.get("spatial_size"))
    return Probe(normalized, tuple(specs), tuple(plans), batch, spatial, input_shape, tuple(stages))


def _stages(plan: Plan, spatial_raw):
    layers = plan.layers
    first = layers[0]
    spatial = None
    if first.type in CONV_DIMS and first.type in RUNNABLE:
        d = CONV_DIMS[first.type]
        if spatial_raw is None:
            spatial = SPATIAL_DEFAULT[d]
        else:
            if isinstance(spatial_raw, int) and not isinstance(spatial_raw, bool):
                spatial_raw = [spatial_raw] * d
            if not isinstance(spatial_raw, list) or len(spatial_raw) != d:
                raise SpecError("spatial_size", f"must be an integer or a list of {d} integers for a {first.type} input")
            spatial = tuple(_int(v, f"spatial_size.{k}", 1, SPATIAL_MAX) for k, v in enumerate(spatial_raw))
    elif spatial_raw is not None:
        raise SpecError("spatial_size", "applies only when the first layer is a conv1d or conv2d layer")

    stages = []
    cur = None
    input_shape = None
    last = len(layers) - 1
    for layer in layers:
        where = f"architecture.layers.{layer.index}"
        if layer.type not in RUNNABLE:
            raise SpecError(f"{where}.type", f"diagnose runs {', '.join(RUNNABLE)} layers only (convs with stride 1 "
                                             f"and 'same' padding); got {layer.type!r}")
        act = layer.activation
        if act.name == "softmax" and layer.index != last:
            raise SpecError(f"{where}.activation", "softmax is allowed on the last layer only")
        f = layer.fields
        flatten = False
        if layer.type == "dense":
            n_in, n_out = f["in_features"], f["out_features"]
            if cur is None:
                cur = (n_in,)
                input_shape = cur
            elif len(cur) > 1:
                if math.prod(cur) != n_in:
                    raise SpecError(f"{where}.in_features", f"must equal the previous layer's flattened output size "
                                                            f"{math.prod(cur)} ({' x '.join(map(str, cur))}), got {n_in}")
                flatten = True
            elif cur[0] != n_in:
                raise SpecError(f"{where}.in_features", f"must equal the previous layer's output size {cur[0]}, got {n_in}")
            stages.append(Stage(layer.index, layer.name, "dense", act, (n_in,), (n_out,), flatten=flatten))
            cur = (n_out,)
        else:
            d = CONV_DIMS[layer.type]
            cin, cout, g = f["in_channels"], f["out_channels"], f.get("groups", 1)
            k = f["kernel_size"]
            kernel = tuple([k] * d if isinstance(k, int) else k)
            if cur is None:
                cur = (cin, *spatial)
                input_shape = cur
            elif len(cur) != d + 1:
                prev = "a dense layer" if len(cur) == 1 else f"a conv{len(cur) - 1}d layer"
                raise SpecError(f"{where}.type", f"a {layer.type} layer cannot follow {prev} (its output has shape "
                                                 f"{list(cur)}; no reshape is implied)")
            elif cur[0] != cin:
                raise SpecError(f"{where}.in_channels", f"must equal the previous layer's out_channels {cur[0]}, got {cin}")
            out = (cout, *cur[1:])
            stages.append(Stage(layer.index, layer.name, layer.type, act, cur, out, kernel=kernel, groups=g))
            cur = out
    return stages, input_shape, spatial


# --------------------------------------------------------------------------- cost

def estimate_cost(doc_or_probe) -> dict:
    """What running a diagnose document costs, from the document alone (nothing is drawn).

    ``multiply_adds``: forward + backward (about 3x forward) for every scheme; ``weight_elements``:
    values drawn; ``peak_bytes``: an upper estimate of the memory held at once (schemes run one
    after another: activations and pre-activations of every layer for the batch, the gradients
    in flight, the weights in float64 and storage dtype, the conv im2col chunks)."""
    p = doc_or_probe if isinstance(doc_or_probe, Probe) else parse_request(doc_or_probe)
    B = p.batch
    n = len(p.schemes)
    fwd = sum(st.macs for st in p.stages)
    weights = sum(math.prod(st.weight_shape) + st.units for st in p.stages)
    widest = max([math.prod(p.input_shape)] + [st.out_size for st in p.stages])
    # cached per layer: z and a (a layer's input is the previous layer's a); plus the probe x and G
    acts = 8 * B * (math.prod(p.input_shape) + 2 * sum(st.out_size for st in p.stages) + p.stages[-1].out_size)
    # one layer's temporaries (gradients in flight, masks, statistics, histogram): generously bounded
    work = WORK_ARRAYS * 8 * B * widest
    # every weight and bias in float64, plus one tensor being drawn and converted (storage, float64, transposed,
    # its dW); whole-matrix schemes hold what their construction needs (orthogonal: a Gaussian matrix and its QR)
    drawn = [(t, t.matrix_work()) for plan in p.plans for t in plan.tensors]
    drawing = max(t.size * (t.dtype.itemsize + 8 * 3) if w is None else w.bytes + 8 * t.size for t, w in drawn)
    wbytes = 8 * weights + drawing
    conv = [st for st in p.stages if st.type != "dense"]
    cols = 0
    if conv:  # im2col of a chunk, its gradient and the matmul's output
        per = max(8 * math.prod(st.in_shape) * math.prod(st.kernel) for st in conv)
        cols = 3 * min(CONV_CHUNK_BYTES * 2, B * per)
    total = acts + work + wbytes + cols
    # drawing the whole-matrix weights is work too (a 2048 x 2048 orthogonal is a QR of 2.3e10 flops, more
    # than the forward and backward passes of a small batch): counted as multiply-adds, two flops each
    qr = sum(w.flops for _, w in drawn if w is not None) // 2
    return {"schemes": n, "batch": B, "layers": len(p.stages), "multiply_adds": n * 3 * B * fwd + qr,
            "weight_elements": n * weights, "peak_bytes": total}


#: limits key -> (cost key, field the error names, what it counts); the 413 names ``diagnose_<key>``.
LIMITS = {
    "max_batch": ("batch", "batch", "examples in the probe batch"),
    "max_cost": ("multiply_adds", "architecture", "multiply-adds (forward and backward, every scheme)"),
    "max_bytes": ("peak_bytes", "architecture", "bytes of working memory"),
}


def check_limits(cost: dict, limits: dict | None) -> None:
    """SpecError (with ``limit``: HTTP 413) when the cost exceeds a configured limit.

    ``limits`` keys: ``max_batch``, ``max_cost`` (multiply-adds), ``max_bytes`` (absent or None:
    unlimited). The error's ``limit`` is ``diagnose_<key>``, the service's configuration field."""
    if not limits:
        return
    unknown = set(limits) - set(LIMITS)
    if unknown:
        raise ValueError(f"unknown diagnose limits: {', '.join(sorted(unknown))}")
    for key, (what, field, words) in LIMITS.items():
        allowed = limits.get(key)
        if allowed is not None and cost[what] > allowed:
            raise SpecError(field, f"the request needs {cost[what]:,} {words}; at most diagnose_{key} = {allowed:,} "
                                   f"are allowed ({cost['schemes']} scheme(s), batch {cost['batch']}, "
                                   f"{cost['layers']} layers)",
                            limit=f"diagnose_{key}", requested=cost[what], allowed=allowed)


def fingerprint(probe: "Probe") -> str:
    """sha256 of the normalized request, the engine and the diagnostics' version: the response
    is a pure function of it (the HTTP ETag)."""
    body = json.dumps({"request": probe.request(), "engine": engine_info(), "diagnose": DIAGNOSE_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------- statistics

def _f(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _moments(v: np.ndarray) -> dict:
    return {"mean": _f(np.mean(v)), "std": _f(np.std(v))}


def _unit_view(v: np.ndarray) -> np.ndarray:
    """(B, U, *S) -> (U, B*prod(S)): one row per unit."""
    return np.moveaxis(v, 1, 0).reshape(v.shape[1], -1)


def _unit_std(v: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.var(_unit_view(v), axis=1))))


def _symmetric(z: np.ndarray) -> bool:
    if z.shape[1] < 2:
        return False
    u = _unit_view(z)
    scale = float(np.max(np.abs(u)))
    return float(np.max(np.abs(u - u[:1]))) <= SYMMETRY_RTOL * scale


def _histogram(v: np.ndarray, lo: float, hi: float) -> dict | None:
    if not (math.isfinite(lo) and math.isfinite(hi)) or not np.isfinite(v).all():
        return None
    # an empty span, or one too narrow for HIST_BINS distinct edges (subnormal values), is widened
    if not hi > lo or not (hi - lo) / HIST_BINS > 0 or len(set(np.linspace(lo, hi, HIST_BINS + 1).tolist())) <= HIST_BINS:
        pad = max(abs(lo), 1.0) * 0.5
        lo, hi = lo - pad, hi + pad
    counts, edges = np.histogram(v, bins=HIST_BINS, range=(lo, hi))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _activation_range(act: Activation, a: np.ndarray) -> tuple[float, float]:
    if act.name == "tanh":
        return -1.0, 1.0
    if act.name in ("sigmoid", "softmax"):
        return 0.0, 1.0
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m == 0.0:
        m = 1.0
    return (0.0, m) if act.name == "relu" else (-m, m)


def _saturated(act: Activation, a: np.ndarray) -> float | None:
    if act.name == "tanh":
        return float(np.mean(np.abs(a) > TANH_SATURATED))
    if act.name == "sigmoid":
        return float(np.mean((a < SIGMOID_SATURATED) | (a > 1.0 - SIGMOID_SATURATED)))
    return None


def _dead(act: Activation, a: np.ndarray) -> float | None:
    if act.name != "relu":
        return None
    return float(np.mean(~np.any(_unit_view(a) != 0.0, axis=1)))


def _tensor_report(t: TensorPlan, values: np.ndarray) -> dict:
    """A tensor's theory (as /v1/plan reports it), its empirical moments and a histogram."""
    th = t.theory()
    x = values.reshape(-1)
    lo, hi = float(x.min()), float(x.max())
    if th["bounds"] is not None:
        lo, hi = min(lo, th["bounds"][0]), max(hi, th["bounds"][1])
    th["empirical"] = {"mean": _f(x.mean()), "std": _f(x.std()), "min": _f(x.min()), "max": _f(x.max())}
    th["histogram"] = _histogram(x, lo, hi)
    return th


def _layer_params(plan: Plan, st: Stage):
    """(weight TensorPlan, float64 weight in PyTorch's view, bias TensorPlan or None, bias or None)."""
    ts = [t for t in plan.tensors if t.spec.layer_index == st.index]
    wt = next(t for t in ts if t.spec.role == "weight")
    bt = next((t for t in ts if t.spec.role == "bias"), None)

    def values(t):
        v = as_float(t.generate(), t.dtype).astype(np.float64)
        inv = np.argsort(t.spec.perm)  # storage layout -> PyTorch view
        return np.ascontiguousarray(v.transpose(inv)) if v.ndim > 1 else v

    w = values(wt)
    return wt, w, bt, (values(bt) if bt is not None else None)


# --------------------------------------------------------------------------- verdicts

_HE_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "silu")


def _rule(act_name: str) -> str:
    if act_name in _HE_FAMILY:
        return "He initialization (he_normal), the rule for ReLU-like units"
    if act_name == "selu":
        return "LeCun normal (lecun_normal), the rule for SELU"
    if act_name == "linear":
        return "Xavier initialization (xavier_normal), the rule for linear layers"
    return f"Xavier initialization (xavier_normal), the rule for {act_name}"


def _hidden_activation(stages) -> str:
    """The activation most hidden layers use (the last layer's if there is only one)."""
    names = [st.activation.name for st in (stages[:-1] or stages)]
    return max(dict.fromkeys(names), key=names.count)


def _for(act_name: str) -> str:
    return "linear layers" if act_name == "linear" else act_name


def _times(r: float) -> str:
    if r == 0:
        return "infinitely"
    x = r if r >= 1 else 1 / r
    return f"{x:.3g}" if x < 1e4 else f"{x:.1e}"


def _verdict(stages, layers: list, weight_tensors: list):
    """(verdict, first_bad_layer, explanation) from the per-layer problems."""
    def first(problem):
        return next((i for i, lay in enumerate(layers) if problem in lay["problems"]), None)

    act = _hidden_activation(stages)
    fix = _rule(act)
    i = first("symmetric")
    if i is not None:
        name = layers[i]["name"]
        dist = weight_tensors[i].distribution
        if isinstance(dist, Constant) and dist.value == 0:
            why = (f"All weights of layer {name} are zero, so its units all compute the same output and receive the same "
                   f"gradient: the model does not train (start from small random weights: {fix}).")
        elif isinstance(dist, Constant):
            why = (f"All weights of layer {name} are the same number ({dist.value:g}), so all its units compute the same "
                   f"output and get the same update: they stay identical and the layer works like a single unit "
                   f"(break the symmetry with random weights: {fix}).")
        else:
            why = (f"All units of layer {name} compute exactly the same output, so they get the same update and can "
                   f"never become different (break the symmetry with random weights: {fix}).")
        return "symmetric", name, why
    i = first("saturated")
    if i is not None:
        lay = layers[i]
        a = stages[i].activation.name
        where = "+1 or -1" if a == "tanh" else "0 or 1"
        scale = _scale_vs_rule(weight_tensors)
        how = f" (variance {_times(scale[0])}x the {scale[1]} variance)" if scale and scale[0] > 1.1 else ""
        why = (f"The weights are too large for {a}{how}: {100 * lay['saturated_fraction']:.0f}% of the outputs of layer "
               f"{lay['name']} are stuck near {where}, where the curve is flat, so almost no gradient gets through and "
               f"learning stalls (use {_rule(a)}).")
        return "saturated", lay["name"], why

    def extreme(key, pick):
        vals = [(lay[key], lay["name"]) for lay in layers if lay[key] is not None]
        return pick(vals, key=lambda v: v[0]) if vals else (1.0, None)

    (fmin, fmin_at), (fmax, fmax_at) = extreme("forward_ratio", min), extreme("forward_ratio", max)
    (bmin, bmin_at), (bmax, bmax_at) = extreme("backward_ratio", min), extreme("backward_ratio", max)
    overflow = next((lay["name"] for lay in layers if lay["overflow"]), None)
    dev_v = -math.log10(min(fmin, bmin)) if min(fmin, bmin) > 0 else math.inf
    dev_e = math.inf if overflow else math.log10(max(fmax, bmax))
    iv, ie = first("vanishing"), first("exploding")
    scale = _scale_vs_rule(weight_tensors)
    if iv is not None and (ie is None or dev_v >= dev_e):
        parts = []
        if fmin < 1 / BAND:
            parts.append(f"the signal fades layer after layer ({_times(fmin)}x weaker than the input at layer {fmin_at})")
        if bmin < 1 / BAND:
            parts.append(f"the gradients fade on their way back ({_times(bmin)}x smaller at layer {bmin_at} than at "
                         f"the last layer)")
        what = " and ".join(parts)
        if scale is not None and scale[0] < 0.9:
            tail = (" and prefer tanh or ReLU in a deep network: sigmoid's slope is at most 1/4, so gradients shrink "
                    "even with well-scaled weights" if act == "sigmoid" else "")
            why = (f"The weights are too small for {_for(act)} (variance {scale[0]:.2g}x the {scale[1]} variance): {what}, so "
                   f"the early layers barely learn (use {fix}{tail}).")
        elif act == "sigmoid":
            why = (f"Even with well-scaled weights, sigmoid's slope is at most 1/4, so {what}; the early layers barely "
                   f"learn (prefer tanh with Xavier or ReLU with He in a deep network).")
        else:
            why = f"Vanishing: {what}, so the early layers barely learn (use {fix})."
        return "vanishing", layers[iv]["name"], why
    if ie is not None:
        parts = []
        if overflow:
            parts.append(f"the signal overflows even 64-bit floats at layer {overflow}")
        elif fmax > BAND:
            parts.append(f"the signal grows layer after layer ({_times(fmax)}x stronger than the input at layer {fmax_at})")
        if not overflow and bmax > BAND:
            parts.append(f"the gradients grow on their way back ({_times(bmax)}x larger at layer {bmax_at} than at the "
                         f"last layer)")
        what = " and ".join(parts)
        if scale is not None and scale[0] > 1.1:
            why = (f"The weights are too large for {_for(act)} (variance {scale[0]:.2g}x the {scale[1]} variance): {what}, so "
                   f"training steps blow up (use {fix}).")
        else:
            why = f"Exploding: {what}, so training steps blow up (use {fix})."
        return "exploding", layers[ie]["name"], why
    n = len(layers)
    why = (f"Activations and gradients keep their scale through all {n} layer{'s' if n > 1 else ''} (signal "
           f"{fmin:.2g}x to {fmax:.2g}x the input's, gradients {bmin:.2g}x to {bmax:.2g}x the last layer's), so every "
           f"layer can learn; {fix.split(',')[0]} is the rule of thumb for {_for(act)}.")
    return "healthy", None, why


def _scale_vs_rule(weight_tensors):
    """(geometric mean over the weights of Var(W) / the variance the rule of thumb recommends for
    the layer's activation, the rule's name), or None when no rule applies."""
    logs, rules = [], []
    for t in weight_tensors:
        rec = policies.recommended_variance(t.spec)
        var = t.distribution.variance()
        if rec is None or not rec[0] > 0 or not var > 0:
            continue
        logs.append(math.log(var) - math.log(rec[0]))  # not log(var / rec): a subnormal var underflows to 0
        rules.append(rec[1])
    if not logs:
        return None
    return math.exp(sum(logs) / len(logs)), max(dict.fromkeys(rules), key=rules.count)


def _problems(lay: dict) -> list:
    out = []
    if lay["symmetric"]:
        out.append("symmetric")
    if lay["saturated_fraction"] is not None and lay["saturated_fraction"] > SATURATION_LIMIT:
        out.append("saturated")
    fr, br = lay["forward_ratio"], lay["backward_ratio"]
    if (fr is not None and fr < 1 / BAND) or (br is not None and br < 1 / BAND):
        out.append("vanishing")
    if lay["overflow"] or (fr is not None and fr > BAND) or (br is not None and br > BAND):
        out.append("exploding")
    return out


def _warnings(stages, layers, weight_tensors, bias_tensors) -> list:
    out = []
    for t in [*weight_tensors, *[b for b in bias_tensors if b is not None]]:
        for w in t.warnings:
            out.append({"code": w["code"], "layer": t.spec.layer, "tensor": t.name, "message": w["message"]})
    for st, lay in zip(stages, layers):
        if lay["dead_fraction"] is not None and lay["dead_fraction"] > DEAD_WARN:
            out.append({"code": "dead_relu", "layer": st.name, "tensor": None, "message": (
                f"{100 * lay['dead_fraction']:.0f}% of the ReLU units of layer {st.name} output zero for every probe "
                "example: they get no gradient and may never recover")})
        sat = lay["saturated_fraction"]
        if sat is not None and SATURATION_WARN < sat <= SATURATION_LIMIT:
            out.append({"code": "saturation", "layer": st.name, "tensor": None, "message": (
                f"{100 * sat:.0f}% of the {st.activation.name} outputs of layer {st.name} are saturated "
                f"(below the {100 * SATURATION_LIMIT:.0f}% that counts as a saturated network)")})
    return out


# --------------------------------------------------------------------------- run

def probe_streams(seed: int, batch: int, input_shape: tuple, output_shape: tuple):
    """The probe input and output gradient (same for every scheme of a request)."""
    def rng(k):
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(PROBE_KEY, k))))
    return rng(0).standard_normal((batch, *input_shape)), rng(1).standard_normal((batch, *output_shape))


def _run_scheme(probe: Probe, plan: Plan, spec: dict, x: np.ndarray, g_out: np.ndarray) -> dict:
    with np.errstate(all="ignore"):  # overflow is measured (reported as such), not a warning
        return _run_scheme_inner(probe, plan, spec, x, g_out)


def _run_scheme_inner(probe: Probe, plan: Plan, spec: dict, x: np.ndarray, g_out: np.ndarray) -> dict:
    stages = probe.stages
    params = [_layer_params(plan, st) for st in stages]
    net = Network(stages, [p[1] for p in params], [p[3] for p in params])
    ref_unit = _unit_std(x)
    layers = []
    for st, (wt, w, bt, b) in zip(stages, params):
        layers.append({
            "name": st.name, "index": st.index, "type": st.type, "activation_function": st.activation.describe(),
            "output_shape": list(st.out_shape), "units": st.units,
            "weight": _tensor_report(wt, w), "bias": _tensor_report(bt, b) if bt is not None else None,
            "pre_activation": {"mean": None, "std": None, "unit_std": None},
            "activation": {"mean": None, "std": None, "histogram": None},
            "saturated_fraction": None, "dead_fraction": None, "symmetric": False,
            "gradient_std": None, "pre_activation_gradient_norm": None,
            "weight_gradient_norm": None, "bias_gradient_norm": None,
            "forward_ratio": None, "backward_ratio": None, "overflow": False, "ran": False, "problems": [],
        })
    complete = True
    for i, _, z, a in net.forward(x):
        lay, act = layers[i], stages[i].activation
        lay["ran"] = True
        finite = bool(np.isfinite(z).all() and np.isfinite(a).all())
        lay["overflow"] = not finite
        lay["pre_activation"] = {**_moments(z), "unit_std": _f(_unit_std(z)) if finite else None}
        lay["activation"] = {**_moments(a), "histogram": _histogram(a, *_activation_range(act, a)) if finite else None}
        lay["saturated_fraction"] = _saturated(act, a)
        lay["dead_fraction"] = _dead(act, a)
        lay["symmetric"] = finite and _symmetric(z)
        lay["forward_ratio"] = _f(_unit_std(z) / ref_unit) if finite else None
        complete = finite
    if complete:
        ref_delta = None
        for i, da, delta, dW, db in net.backward(g_out):
            if i < 0:
                break
            lay = layers[i]
            norm = float(np.sqrt(np.sum(delta * delta) / len(delta)))
            if ref_delta is None:
                ref_delta = norm
            lay["gradient_std"] = _f(np.std(da))
            lay["pre_activation_gradient_norm"] = _f(norm)
            lay["weight_gradient_norm"] = _f(np.linalg.norm(dW))
            lay["bias_gradient_norm"] = _f(np.linalg.norm(db)) if db is not None else None
            # No gradient at all at the last layer means no weight below it can learn either.
            lay["backward_ratio"] = _f(norm / ref_delta) if ref_delta > 0 else 0.0
    for lay in layers:
        lay["problems"] = _problems(lay)
    weight_tensors = [p[0] for p in params]
    verdict, first_bad, why = _verdict(stages, layers, weight_tensors)
    return {"scheme": spec, "verdict": verdict, "first_bad_layer": first_bad, "explanation": why,
            "warnings": _warnings(stages, layers, weight_tensors, [p[2] for p in params]),
            "layers": layers}


def run(probe: Probe, cost: dict | None = None) -> dict:
    """Run a validated request (limits already checked): the response document."""
    out_shape = probe.stages[-1].out_shape
    x, g_out = probe_streams(probe.seed, probe.batch, probe.input_shape, out_shape)
    results = [_run_scheme(probe, plan, spec, x, g_out) for plan, spec in zip(probe.plans, probe.schemes)]
    return {
        "seed": probe.seed,
        "batch": probe.batch,
        "dtype": probe.document["dtype"],
        "layout": probe.document["layout"],
        "input_shape": list(probe.input_shape),
        "output_shape": list(out_shape),
        "engine": engine_info(),
        "request": probe.request(),
        "cost": cost if cost is not None else estimate_cost(probe),
        "thresholds": dict(THRESHOLDS),
        "results": results,
    }


def diagnose(doc, *, limits: dict | None = None) -> dict:
    """Validate, check ``limits`` (see ``check_limits``) on the estimated cost before anything is
    drawn, and run: ``{seed, batch, ..., results: [one per scheme, in request order]}``."""
    probe = parse_request(doc)
    cost = estimate_cost(probe)
    check_limits(cost, limits)
    return run(probe, cost)
