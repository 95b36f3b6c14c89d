"""A validated request -> a Plan: every tensor's shape, fans, scheme, distribution and theory.

A Plan allocates nothing; each TensorPlan's ``source`` (``core.generate``) draws its values (see
``streams`` for the reproducibility contract). The request arrives validated and typed
(``core.document.Request``, built by the boundary, ``service.document``); what is checked here is
what only the plan knows: names unique across layers and tensors, which tensors exist, schemes
that cannot apply to a tensor's shape, values a dtype cannot hold, and the size ceilings.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..version import ENGINE_VERSION
from . import (
    generate,
    layers,
    policies,
    recipes,
    roles,
    scheme_entry,
    schemes,
    selection,
    streams,
)
from .distributions import WHOLE_MAX_ELEMENTS, MatrixWork, WholeMatrix, qr_work
from .document import Request
from .dtypes import DTYPES, DType, round_scalar
from .errors import SpecError
from .layers import Layer, TensorSpec
from .torch.init import refusal
from .torch.replay import TorchReplay, predicted_exact, torch_call

#: The most elements one architecture may hold, all tensors together (413 ``max_plan_elements``, fixed):
#: element and byte counts then stay exact in every JSON parser (IEEE doubles) and within zip64's sizes.
#: Far above anything that can be generated; it only bounds what ``/v1/plan`` describes.
MAX_PLAN_ELEMENTS = 1 << 53
#: ``json.dumps(..., sort_keys=True, separators=(",", ":"))``, the same text, made once: the document is a
#: tree (no cycle to check for), and building an encoder per call costs as much as a small document.
_SORTED_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)
#: An unbounded normal is checked against its dtype's range at mean +- NORMAL_REACH * std (a draw beyond
#: 10 standard deviations has probability below 2e-23).
NORMAL_REACH = 10.0


def engine_info(rng: str = "weightinit") -> dict:
    if rng == "torch":
        return {"name": "weightinit", "version": ENGINE_VERSION, "numpy": np.__version__,
                "bit_generator": "MT19937 (PyTorch CPU stream replay, torch 2.13 AVX2 kernels)", "block_elements": None}
    return {"name": "weightinit", "version": ENGINE_VERSION, "numpy": np.__version__,
            "bit_generator": streams.BIT_GENERATOR, "block_elements": streams.BLOCK_ELEMENTS}


@dataclass
class TensorPlan:
    spec: TensorSpec
    position: int
    seed: int
    dtype: DType
    scheme: dict
    chosen_by: str
    reason: str
    resolved: scheme_entry.Resolved
    warnings: list = field(default_factory=list)
    replay: object = None      # a TorchReplay when rng == "torch"

    @property
    def source(self) -> generate.Source:
        """How the values are drawn (``core.generate``): replayed, as a whole matrix, or block-wise.

        Made on each use (it holds nothing but this TensorPlan): kept, it would make a reference
        cycle, and every plan would wait for the garbage collector instead of going when its
        request does."""
        if self.replay is not None:
            return generate.Replayed(self)
        if isinstance(self.distribution, WholeMatrix):
            return generate.WholeMatrix(self)
        return generate.Blockwise(self)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def shape(self) -> tuple:
        return self.spec.shape

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def distribution(self):
        return self.resolved.distribution

    def theory(self) -> dict:
        d = self.distribution
        b = d.bounds()
        out = {
            "name": self.name,
            "layer": self.spec.layer,
            "role": self.spec.role,
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "scheme": {**self.scheme, "chosen_by": self.chosen_by, "reason": self.reason},
            "distribution": d.name,
            "parameters": d.parameters(),
            "fan_in": self.spec.fan_in,
            "fan_out": self.spec.fan_out,
            "gain": self.resolved.gain,
            "bounds": None if b is None else [round_scalar(b[0], self.dtype), round_scalar(b[1], self.dtype)],
            "mean": d.mean(),
            "variance": d.variance(),
            "std": math.sqrt(max(d.variance(), 0.0)),
            "target_variance": self.resolved.target_variance,
            "warnings": self.warnings,
        }
        if self.resolved.mode:
            out["mode"] = self.resolved.mode
        if self.spec.fan_note:
            out["fan_note"] = self.spec.fan_note
        if self.spec.zero_rows:
            out["zero_rows"] = list(self.spec.zero_rows)
        if self.spec.layer_role is not None:
            out["layer_role"] = self.spec.layer_role
            if roles.is_residual(self.spec.layer_role):
                out["residual"] = True
        if self.replay is not None:
            out["torch_call"] = torch_call(self)[2]
            out["exact"] = predicted_exact(self)
        return out

    def matrix_work(self) -> MatrixWork | None:
        """What drawing this tensor as a whole matrix costs (None for block-wise tensors)."""
        if isinstance(self.distribution, WholeMatrix):
            return self.distribution.work(self.spec.torch_shape, self.dtype.itemsize)
        if self.replay is not None and self.scheme["name"] == "orthogonal":  # torch's orthogonal_ is a QR too
            return qr_work(self.spec.torch_shape, self.dtype.itemsize)
        return None

    # ------------------------------------------------------------------ values (core.generate)
    def blocks(self, parallel: bool = True):
        """The values in storage dtype, block by block, C order (views of reused buffers, each valid
        until the next is requested)."""
        return self.source.blocks(parallel)

    def block_range(self, start: int, stop: int, parallel: bool = True):
        """The values of flat elements ``[start, stop)``, drawing only the blocks that overlap them (each
        block is its own stream: what HTTP ``Range`` requests and sharded fetches rely on); the pieces
        concatenate to ``generate().reshape(-1)[start:stop]``."""
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"element range [{start}, {stop}) outside {self.name} ({self.size} elements)")
        if start == stop:
            return iter(())
        return self.source.block_range(start, stop, parallel)

    def generate(self, parallel: bool = True) -> np.ndarray:
        """The whole tensor in storage dtype and storage shape (a fresh array)."""
        return self.source.generate(parallel).reshape(self.shape)


@dataclass
class Plan:
    request: Request
    layers: list                # the request's layers (core.layers.Layer)
    tensors: list               # every tensor of the architecture, in order
    selected: list              # the selected TensorPlans, in architecture order

    @cached_property
    def document(self) -> dict:
        """The normalized request (defaults filled, names canonical), as reports echo it."""
        return self.request.document

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def total_elements(self) -> int:
        return sum(t.size for t in self.selected)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the normalized request + engine and numpy versions: the ETag's value."""
        body = _SORTED_JSON.encode({"request": self.document, "engine": engine_info(self.request.rng)})
        return hashlib.sha256(body.encode()).hexdigest()

    def header(self) -> dict:
        """The document head every output shares (JSON, npz manifest, safetensors metadata)."""
        d = self.document
        head = {"seed": d["seed"], "scheme": d["scheme"], "bias": d["bias"], "dtype": d["dtype"], "layout": d["layout"],
                "rng": d["rng"], "engine": engine_info(d["rng"])}
        if self.request.hf is not None:  # the model: its family, class, the transformers release it follows
            head["hf"] = self.request.hf.describe()
        return {**head, "request": d}

    def layer_summary(self) -> list:
        by_layer: dict[int, list] = {}
        for t in self.tensors:
            by_layer.setdefault(t.spec.layer_index, []).append(t)
        out = []
        for layer in self.layers:
            ts = by_layer.get(layer.index, [])
            chosen = next((t for t in ts if t.spec.role in ("weight", "raw")), None)
            out.append({"name": layer.name, "type": layer.type, "activation": layer.activation.describe(),
                        "scheme": chosen.scheme["name"] if chosen else None,
                        "chosen_by": chosen.chosen_by if chosen else None,
                        "reason": chosen.reason if chosen else None,
                        "tensors": [t.name for t in ts]})
        return out


def _overflow(dist, dtype: DType) -> str | None:
    """Why values of ``dist`` would not fit in ``dtype`` (they would round to +-inf), or None.

    Only float16 (largest finite value 65504) can be reached: scheme parameters are bounded
    (at most 1e6 for means, stds and bounds, 1000 for gains, so every reach is below 1e13), far
    inside float32 and bfloat16: for them there is nothing to compute."""
    if dtype.name != "float16":
        return None
    b = dist.bounds()
    if b is None:  # an unbounded normal (normal, sparse): mean +- NORMAL_REACH std
        p = dist.parameters()
        std = float(p.get("std") or math.sqrt(max(dist.variance(), 0.0)))
        b = [dist.mean() - NORMAL_REACH * std, dist.mean() + NORMAL_REACH * std]
        what = f"reaches {max(abs(b[0]), abs(b[1])):.6g} (mean +- {NORMAL_REACH:g} std)"
    else:
        what = f"reaches {max(abs(b[0]), abs(b[1])):.6g}"
    reach = max(abs(float(b[0])), abs(float(b[1])))
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(round_scalar(reach, dtype)):
            return None
    largest = float(np.finfo(np.float16).max)
    return (f"{dist.name} {what}, beyond the largest finite {dtype.name} value ({largest:g}): its values "
            f"would overflow to infinity; use a smaller scale or another dtype")


def build_plan(request: Request, *, max_tensors: int | None = None) -> Plan:
    """The Plan of a validated request: every tensor, its scheme and its theory (nothing drawn)."""
    d = request
    dtype = DTYPES[d.dtype]
    specs: list[tuple[TensorSpec, Layer]] = []
    names: set[str] = set()
    root = "architecture.hf_config" if d.hf is not None else "architecture.layers"
    for layer in d.layers:
        where = root if d.hf is not None else f"{root}.{layer.index}"
        kind = layers.get(layer.type)
        if layer.name in names:
            raise SpecError(f"{where}.name", f"duplicate layer name {layer.name!r}")
        names.add(layer.name)
        if layer.bias is not None and layer.bias is not False and not kind.has_bias:
            raise SpecError(f"{where}.bias", f"a {layer.type} layer has no bias")
        # bias: false on the request drops the biases of dense/conv/recurrent/attention layers;
        # a layer's own bias overrides it; norms keep theirs unless the layer says false.
        request_bias_off = d.bias is False and layer.bias is None and kind.biased
        with_bias = layer.bias is not False and not request_bias_off and kind.has_bias
        for ts in kind.tensors(layer, d.layout, with_bias):
            if ts.name == "manifest":
                raise SpecError(f"{where}.name", "'manifest' is reserved for the npz manifest")
            specs.append((ts, layer))
        if max_tensors is not None and len(specs) > max_tensors:
            raise SpecError(root, f"the architecture has more than {max_tensors} tensors",
                            limit="max_tensors", requested=len(specs), allowed=max_tensors)
    total = sum(ts.size for ts, _ in specs)
    if total > MAX_PLAN_ELEMENTS:
        raise SpecError(root, f"the architecture has {total} elements; at most 2**53 = "
                                               f"{MAX_PLAN_ELEMENTS} are allowed", limit="max_plan_elements",
                        requested=total if total < 2 ** 63 else None, allowed=MAX_PLAN_ELEMENTS)
    tensor_names = [s.name for s, _ in specs]
    if len(set(tensor_names)) != len(tensor_names):
        seen: set[str] = set()
        dup = next(n for n in tensor_names if n in seen or seen.add(n))
        raise SpecError("architecture.layers", f"two tensors would be named {dup!r}; rename a layer")
    plans = []
    request_bias = d.bias if d.bias is not False else None
    model = recipes.Model.of(d)
    for pos, (ts, layer) in enumerate(specs):
        where = f"architecture.layers.{layer.index}"
        # an hf_config's layers have no scheme of their own: whatever chose the scheme, the request's field did
        scheme_field = "scheme" if d.hf is not None else f"{where}.scheme"
        spec, by, why = policies.choose(ts, d.scheme, request_bias, layer, model)
        ctx = scheme_entry.Context(ts.shape, ts.torch_shape, ts.fan_in, ts.fan_out, ts.groups, ts.gates)
        is_bias = ts.role in ("bias", "norm_bias")
        # the field that chose this tensor's scheme: the layer's, the request's, or (a policy's choice) the scheme
        field_name = {"layer": f"{where}.bias" if is_bias else f"{where}.scheme",
                      "request": "bias" if is_bias else "scheme"}.get(by, scheme_field)
        try:
            resolved = schemes.resolve(spec, ctx)
        except SpecError as e:
            msg = e.message if not e.field or e.field in ("", "scheme") else f"{e.field}: {e.message}"
            raise SpecError(field_name, f"{spec['name']} on {ts.name} (shape {list(ts.shape)}): {msg}") from None
        dist = resolved.distribution
        overflow = _overflow(dist, dtype)
        if overflow:
            raise SpecError(field_name if by in ("layer", "request") else "dtype", f"{spec['name']} on {ts.name}: {overflow}")
        if isinstance(dist, WholeMatrix) and ts.size > WHOLE_MAX_ELEMENTS:
            raise SpecError(f"{where}.scheme" if by == "layer" else "scheme",
                            f"{dist.name} is drawn as a whole matrix, limited to {WHOLE_MAX_ELEMENTS} elements; "
                            f"{ts.name} has {ts.size}", limit="whole_matrix_elements", requested=ts.size,
                            allowed=WHOLE_MAX_ELEMENTS)
        warns = policies.warnings_for(ts, dist, dist.variance())
        plan = TensorPlan(ts, pos, d.seed, dtype, spec, by, why, resolved, warns)
        if d.rng == "torch":
            method, _, call = torch_call(plan)
            refused = refusal(method, ts.torch_shape)
            if refused:
                raise SpecError(field_name, f"{spec['name']} on {ts.name} (shape {list(ts.shape)}): rng torch replays "
                                            f"{call.split('(')[0]}, which refuses this tensor: {refused}")
        plans.append(plan)
    selected = plans
    if d.tensors is not None:
        chosen = selection.select(tensor_names, list(d.tensors))
        selected = [p for p in plans if p.name in chosen]
    if d.rng == "torch":
        replay = TorchReplay(list(d.layers), plans, selected, d.seed, d.scheme)
        for p in plans:
            p.replay = replay
    return Plan(request, list(d.layers), plans, selected)
