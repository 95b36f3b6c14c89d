"""A request document -> a Plan: every tensor's shape, fans, scheme, distribution and theory.

A Plan allocates nothing; ``TensorPlan.generate`` and ``TensorPlan.blocks`` draw the values
(see ``streams`` for the reproducibility contract). The document is the public contract of
the service (README, openapi.yaml); the HTTP and CLI layers validate its structure first
with marshmallow, and the engine re-checks the semantics it owns (sizes, scheme parameters,
name rules) so that direct callers get the same clear errors.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import matrix_cache, normals, policies, schemes, selection, streams
from .distributions import WHOLE_MAX_ELEMENTS, ForgetGateBias, MatrixWork, WholeMatrix, qr_work
from .dtypes import DTYPES, DType, as_float, round_scalar, to_storage
from .errors import SpecError
from .layers import BIASED, LAYER_FIELDS, NORMS, COMMON_FIELDS, Layer, TensorSpec, check_name, layer_tensors, parse_activation
from ..version import ENGINE_VERSION

SEED_MAX = 2 ** 63  # exclusive
#: The most elements one architecture may hold, all tensors together (413 ``max_plan_elements``, fixed):
#: element and byte counts then stay exact in every JSON parser (IEEE doubles) and within zip64's sizes.
#: Far above anything that can be generated; it only bounds what ``/v1/plan`` describes.
MAX_PLAN_ELEMENTS = 1 << 53
#: An unbounded normal is checked against its dtype's range at mean +- NORMAL_REACH * std (a draw beyond
#: 10 standard deviations has probability below 2e-23).
NORMAL_REACH = 10.0
LAYOUTS = ("torch", "keras")
RNGS = ("weightinit", "torch")
DOC_FIELDS = ("architecture", "scheme", "seed", "dtype", "layout", "bias", "tensors", "rng")


def engine_info(rng: str = "weightinit") -> dict:
    if rng == "torch":
        return {"name": "weightinit", "version": ENGINE_VERSION, "numpy": np.__version__,
                "bit_generator": "MT19937 (PyTorch CPU stream replay, torch 2.13 AVX2 kernels)", "block_elements": None}
    return {"name": "weightinit", "version": ENGINE_VERSION, "numpy": np.__version__,
            "bit_generator": streams.BIT_GENERATOR, "block_elements": streams.BLOCK_ELEMENTS}


def _scheme_spec(value, field_name: str):
    try:
        return schemes.normalize_spec(value)
    except SpecError as e:
        raise e.with_prefix(field_name) from None


@dataclass
class TensorPlan:
    spec: TensorSpec
    position: int
    seed: int
    dtype: DType
    scheme: dict
    chosen_by: str
    reason: str
    resolved: schemes.Resolved
    warnings: list = field(default_factory=list)
    replay: object = None      # a TorchReplay when rng == "torch"

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
        if self.replay is not None:
            from .torch_replay import predicted_exact, torch_call

            out["torch_call"] = torch_call(self)[2]
            out["exact"] = predicted_exact(self)
        return out

    def _replayed(self) -> np.ndarray:
        """rng torch: the PyTorch-stream values, in the request's layout, storage dtype, flat."""
        values, _ = self.replay.values(self)
        values = np.ascontiguousarray(np.asarray(values, np.float32).transpose(self.spec.perm))
        return to_storage(values.astype(self.dtype.compute, copy=False), self.dtype).reshape(-1)

    def matrix_work(self) -> MatrixWork | None:
        """What drawing this tensor as a whole matrix costs (None for block-wise tensors)."""
        if isinstance(self.distribution, WholeMatrix):
            return self.distribution.work(self.spec.torch_shape, self.dtype.itemsize)
        if self.replay is not None and self.scheme["name"] == "orthogonal":  # torch's orthogonal_ is a QR too
            return qr_work(self.spec.torch_shape, self.dtype.itemsize)
        return None

    # ------------------------------------------------------------------ generation
    def _whole_stored(self) -> np.ndarray:
        """The whole tensor in storage dtype, flat and read-only, for whole-matrix distributions:
        drawn once per process and shared by every request and Range part (``matrix_cache``)."""
        key = (self.seed, self.position, self.spec.torch_shape, self.spec.perm, self.dtype.name, repr(self.distribution))
        return matrix_cache.cache().get_or_draw(key, lambda: to_storage(self._whole(), self.dtype))

    def _whole(self) -> np.ndarray:
        """The whole tensor (compute dtype), for whole-matrix distributions."""
        d = self.distribution
        if self.size > WHOLE_MAX_ELEMENTS:
            raise SpecError("scheme", f"{d.name} is drawn as a whole matrix and is limited to {WHOLE_MAX_ELEMENTS} "
                                      f"elements; {self.name} has {self.size}", limit="whole_matrix_elements",
                            requested=self.size, allowed=WHOLE_MAX_ELEMENTS)

        def gaussian():
            out = np.empty(self.size, np.float64)
            for b in range(streams.n_blocks(self.size)):
                lo, hi = streams.block_bounds(self.size, b)
                normals.fill(streams.block_rng(self.seed, self.position, b), out[lo:hi])
            return out

        values = d.draw(self.spec.torch_shape, gaussian, streams.extra_rng(self.seed, self.position))
        values = np.asarray(values, dtype=np.float64).reshape(self.spec.torch_shape)
        values = values.transpose(self.spec.perm)
        return np.ascontiguousarray(values, dtype=self.dtype.compute).reshape(-1)

    def _fill_block(self, b: int, compute: np.ndarray, storage: np.ndarray | None) -> np.ndarray:
        lo, hi = streams.block_bounds(self.size, b)
        buf = compute[: hi - lo]
        self.distribution.fill(streams.block_rng(self.seed, self.position, b), buf)
        if storage is None:
            return buf
        return to_storage(buf, self.dtype, storage[: hi - lo])

    def blocks(self, parallel: bool = True):
        """Yield the tensor's values in storage dtype, block by block, in C order.

        Blocks are views of reused buffers: each is valid until the next is requested."""
        if self.replay is not None or not self.distribution.blockwise:
            whole = self._replayed() if self.replay is not None else self._whole_stored()
            for b in range(streams.n_blocks(self.size)):
                lo, hi = streams.block_bounds(self.size, b)
                yield whole[lo:hi]
            return
        n = streams.n_blocks(self.size)
        per = min(self.size, streams.BLOCK_ELEMENTS)
        bufs: dict[int, tuple] = {}
        cast = self.dtype.storage != self.dtype.compute

        def produce(b, slot):
            if slot not in bufs:
                bufs[slot] = (np.empty(per, self.dtype.compute), np.empty(per, self.dtype.storage) if cast else None)
            compute, storage = bufs[slot]
            return self._fill_block(b, compute, storage)

        yield from streams.pipelined(n, produce, parallel=parallel)

    @staticmethod
    def stream(tensors: list, parallel: bool = True):
        """Yield ``(tensor, values)`` for the blocks of several tensors, in order, like ``blocks`` of
        each in turn, but with one prefetch pipeline across consecutive block-wise tensors: the
        thread pool does not drain and refill at every tensor boundary (a model has hundreds).

        Values are views of reused buffers (each valid until the next is requested)."""
        i = 0
        while i < len(tensors):
            t = tensors[i]
            if t.replay is not None or not t.distribution.blockwise:
                for values in t.blocks(parallel=parallel):
                    yield t, values
                i += 1
                continue
            j = i
            while j < len(tensors) and tensors[j].replay is None and tensors[j].distribution.blockwise \
                    and tensors[j].dtype == t.dtype:
                j += 1
            group = tensors[i:j]
            work = [(u, b) for u in group for b in range(streams.n_blocks(u.size))]
            per = min(max(u.size for u in group), streams.BLOCK_ELEMENTS)
            cast = t.dtype.storage != t.dtype.compute
            bufs: dict[int, tuple] = {}

            def produce(k, slot, work=work, per=per, cast=cast, bufs=bufs):
                u, b = work[k]
                if slot not in bufs:
                    bufs[slot] = (np.empty(per, u.dtype.compute), np.empty(per, u.dtype.storage) if cast else None)
                compute, storage = bufs[slot]
                return u, u._fill_block(b, compute, storage)

            yield from streams.pipelined(len(work), produce, parallel=parallel)
            i = j

    def block_range(self, start: int, stop: int, parallel: bool = True):
        """Yield the values of flat elements ``[start, stop)`` in storage dtype, in C order, drawing
        only the blocks that overlap the range (each block is its own stream, so any slice of a
        tensor is computable alone: what HTTP ``Range`` requests and sharded fetches rely on).

        The pieces concatenate to ``generate().reshape(-1)[start:stop]``; like ``blocks`` they are
        views of reused buffers, each valid until the next is requested. Whole-matrix and
        ``rng: torch`` tensors (at most ``WHOLE_MAX_ELEMENTS``) are drawn whole and sliced."""
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"element range [{start}, {stop}) outside {self.name} ({self.size} elements)")
        if start == stop:
            return
        if self.replay is not None or not self.distribution.blockwise:
            whole = self._replayed() if self.replay is not None else self._whole_stored()
            yield whole[start:stop]
            return
        first = start // streams.BLOCK_ELEMENTS
        last = (stop - 1) // streams.BLOCK_ELEMENTS
        per = min(self.size, streams.BLOCK_ELEMENTS)
        bufs: dict[int, tuple] = {}
        cast = self.dtype.storage != self.dtype.compute

        def produce(i, slot):
            b = first + i
            if slot not in bufs:
                bufs[slot] = (np.empty(per, self.dtype.compute), np.empty(per, self.dtype.storage) if cast else None)
            compute, storage = bufs[slot]
            values = self._fill_block(b, compute, storage)
            lo, _ = streams.block_bounds(self.size, b)
            return values[max(start - lo, 0): stop - lo]

        yield from streams.pipelined(last - first + 1, produce, parallel=parallel)

    def generate(self, parallel: bool = True) -> np.ndarray:
        """The whole tensor in storage dtype and storage shape (a fresh array)."""
        if self.replay is not None:
            return self._replayed().reshape(self.shape)
        if not self.distribution.blockwise:
            return self._whole_stored().reshape(self.shape).copy()
        out = np.empty(self.size, self.dtype.storage)
        cast = self.dtype.storage != self.dtype.compute
        direct = out if not cast else None

        def produce(b, slot):
            lo, hi = streams.block_bounds(self.size, b)
            if direct is not None:
                self.distribution.fill(streams.block_rng(self.seed, self.position, b), direct[lo:hi])
            else:
                self._fill_block(b, np.empty(hi - lo, self.dtype.compute), out[lo:hi])
            return None

        for _ in streams.pipelined(streams.n_blocks(self.size), produce, parallel=parallel):
            pass
        return out.reshape(self.shape)


@dataclass
class Plan:
    document: dict              # the normalized request (defaults filled, names canonical)
    layers: list
    tensors: list               # every tensor of the architecture, in order
    selected: list              # the selected TensorPlans, in architecture order

    @property
    def seed(self) -> int:
        return self.document["seed"]

    @property
    def total_elements(self) -> int:
        return sum(t.size for t in self.selected)

    def fingerprint(self) -> str:
        """sha256 of the normalized request + engine and numpy versions: the ETag's value (memoized:
        the ETag, the file name and the cache all ask for it)."""
        memo = self.__dict__.get("_fingerprint")
        if memo is None:
            body = json.dumps({"request": self.document, "engine": engine_info(self.document["rng"])}, sort_keys=True,
                              separators=(",", ":"))
            memo = self.__dict__["_fingerprint"] = hashlib.sha256(body.encode()).hexdigest()
        return memo

    def header(self) -> dict:
        """The document head every output shares (JSON, npz manifest, safetensors metadata)."""
        d = self.document
        return {"seed": d["seed"], "scheme": d["scheme"], "bias": d["bias"], "dtype": d["dtype"], "layout": d["layout"],
                "rng": d["rng"], "engine": engine_info(d["rng"]), "request": d}

    def layer_summary(self) -> list:
        out = []
        for layer in self.layers:
            ts = [t for t in self.tensors if t.spec.layer_index == layer.index and t.spec.role in ("weight", "raw")]
            chosen = ts[0] if ts else None
            out.append({"name": layer.name, "type": layer.type, "activation": layer.activation.describe(),
                        "scheme": chosen.scheme["name"] if chosen else None,
                        "chosen_by": chosen.chosen_by if chosen else None,
                        "reason": chosen.reason if chosen else None,
                        "tensors": [t.name for t in self.tensors if t.spec.layer_index == layer.index]})
        return out


def normalize_document(doc) -> dict:
    """Defaults filled and schemes canonical; SpecError names the first bad field."""
    if not isinstance(doc, dict):
        raise SpecError("", "the request document must be a JSON object")
    unknown = sorted(set(doc) - set(DOC_FIELDS))
    if unknown:
        raise SpecError(unknown[0], f"unknown field (accepted: {', '.join(DOC_FIELDS)})")
    arch = doc.get("architecture")
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list):
        raise SpecError("architecture.layers", "is required: a list of layers")
    if set(arch) - {"layers"}:
        raise SpecError(f"architecture.{sorted(set(arch) - {'layers'})[0]}", "unknown field (accepted: layers)")
    if not arch["layers"]:
        raise SpecError("architecture.layers", "must hold at least one layer")
    seed = doc.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed < SEED_MAX):
        raise SpecError("seed", f"must be an integer with 0 <= seed < 2**63, got {seed!r}")
    dtype = doc.get("dtype", "float32")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise SpecError("dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    layout = doc.get("layout", "torch")
    if layout not in LAYOUTS:
        raise SpecError("layout", f"must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    rng = doc.get("rng", "weightinit")
    if rng not in RNGS:
        raise SpecError("rng", f"must be one of {', '.join(RNGS)}, got {rng!r}")
    bias = doc.get("bias")
    tensors = doc.get("tensors")
    if tensors is not None and (not isinstance(tensors, list) or not all(isinstance(p, str) and p for p in tensors)):
        raise SpecError("tensors", "must be a list of tensor names or glob patterns")
    layers = []
    for i, layer in enumerate(arch["layers"]):
        if not isinstance(layer, dict):
            raise SpecError(f"architecture.layers.{i}", "a layer must be an object")
        layer = dict(layer)
        t = layer.get("type")
        if not isinstance(t, str) or t not in LAYER_FIELDS:
            raise SpecError(f"architecture.layers.{i}.type", f"unknown layer type {t!r}; expected one of {', '.join(LAYER_FIELDS)}")
        extra = sorted(set(layer) - set(COMMON_FIELDS) - set(LAYER_FIELDS[t]))
        if extra:
            raise SpecError(f"architecture.layers.{i}.{extra[0]}", f"unknown field for a {t} layer "
                            f"(accepted: {', '.join(COMMON_FIELDS + LAYER_FIELDS[t])})")
        if layer.get("scheme") is not None:
            layer["scheme"] = _scheme_spec(layer["scheme"], f"architecture.layers.{i}.scheme")
        if layer.get("bias") not in (None, False):
            layer["bias"] = _scheme_spec(layer["bias"], f"architecture.layers.{i}.bias")
        layers.append({k: v for k, v in layer.items() if v is not None})
    return {
        "architecture": {"layers": layers},
        "scheme": _scheme_spec(doc.get("scheme", "auto"), "scheme"),
        "seed": seed,
        "dtype": dtype,
        "layout": layout,
        "bias": bias if bias in (None, False) else _scheme_spec(bias, "bias"),
        "tensors": tensors,
        "rng": rng,
    }


def _overflow(dist, dtype: DType) -> str | None:
    """Why values of ``dist`` would not fit in ``dtype`` (they would round to +-inf), or None.

    Only float16 (largest finite value 65504) can be reached: scheme parameters are bounded
    (at most 1e6 for means, stds and bounds, 1000 for gains), far inside float32 and bfloat16."""
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
    largest = float(np.finfo(np.float16).max) if dtype.name == "float16" else float(np.finfo(np.float32).max)
    return (f"{dist.name} {what}, beyond the largest finite {dtype.name} value ({largest:g}): its values "
            f"would overflow to infinity; use a smaller scale or another dtype")


def build_plan(doc: dict, *, max_tensors: int | None = None) -> Plan:
    """The Plan of a request document (normalizing it first)."""
    d = normalize_document(doc)
    dtype = DTYPES[d["dtype"]]
    layers: list[Layer] = []
    specs: list[tuple[TensorSpec, Layer]] = []
    names: set[str] = set()
    for i, raw in enumerate(d["architecture"]["layers"]):
        where = f"architecture.layers.{i}"
        try:
            name = check_name(raw.get("name", str(i)))
            if name in names:
                raise SpecError("name", f"duplicate layer name {name!r}")
            names.add(name)
            layer = Layer(i, name, raw["type"], parse_activation(raw.get("activation")),
                          {k: v for k, v in raw.items() if k not in COMMON_FIELDS},
                          scheme=raw.get("scheme"), bias=raw.get("bias"))
            if layer.bias is not None and layer.bias is not False and layer.type not in BIASED | NORMS:
                raise SpecError("bias", f"a {layer.type} layer has no bias")
            # bias: false on the request drops the biases of dense/conv/recurrent/attention layers;
            # a layer's own bias overrides it; norms keep theirs unless the layer says false.
            request_bias_off = d["bias"] is False and layer.bias is None and layer.type in BIASED
            with_bias = layer.bias is not False and not request_bias_off and (layer.type in BIASED or layer.type in NORMS)
            tensor_specs = layer_tensors(layer, d["layout"], with_bias)
        except SpecError as e:
            raise e.with_prefix(where) from None
        for ts in tensor_specs:
            if ts.name == "manifest":
                raise SpecError(f"{where}.name", "'manifest' is reserved for the npz manifest")
            specs.append((ts, layer))
        layers.append(layer)
        if max_tensors is not None and len(specs) > max_tensors:
            raise SpecError("architecture.layers", f"the architecture has more than {max_tensors} tensors",
                            limit="max_tensors", requested=len(specs), allowed=max_tensors)
    total = sum(ts.size for ts, _ in specs)
    if total > MAX_PLAN_ELEMENTS:
        raise SpecError("architecture.layers", f"the architecture has {total} elements; at most 2**53 = "
                                               f"{MAX_PLAN_ELEMENTS} are allowed", limit="max_plan_elements",
                        requested=total if total < SEED_MAX else None, allowed=MAX_PLAN_ELEMENTS)
    tensor_names = [s.name for s, _ in specs]
    if len(set(tensor_names)) != len(tensor_names):
        seen: set[str] = set()
        dup = next(n for n in tensor_names if n in seen or seen.add(n))
        raise SpecError("architecture.layers", f"two tensors would be named {dup!r}; rename a layer")
    plans = []
    for pos, (ts, layer) in enumerate(specs):
        where = f"architecture.layers.{layer.index}"
        request_bias = d["bias"] if d["bias"] is not False else None
        spec, by, why = policies.choose(ts, d["scheme"], request_bias, layer.scheme, layer.bias)
        ctx = schemes.Context(ts.shape, ts.torch_shape, ts.fan_in, ts.fan_out, ts.groups)
        try:
            if spec["name"] == "lstm_forget_bias":
                dist = ForgetGateBias(ts.gates, ts.size)
                resolved = schemes.Resolved(dist, None, dist.variance())
            else:
                resolved = schemes.resolve(spec, ctx)
        except SpecError as e:
            field_name = {"layer": f"{where}.scheme" if ts.role not in ("bias", "norm_bias") else f"{where}.bias",
                          "request": "scheme" if ts.role not in ("bias", "norm_bias") else "bias"}.get(by, f"{where}.scheme")
            msg = e.message if not e.field or e.field in ("", "scheme") else f"{e.field}: {e.message}"
            raise SpecError(field_name, f"{spec['name']} on {ts.name} (shape {list(ts.shape)}): {msg}") from None
        dist = resolved.distribution
        overflow = _overflow(dist, dtype)
        if overflow:
            field_name = {"layer": f"{where}.scheme" if ts.role not in ("bias", "norm_bias") else f"{where}.bias",
                          "request": "scheme" if ts.role not in ("bias", "norm_bias") else "bias"}.get(by, "dtype")
            raise SpecError(field_name, f"{spec['name']} on {ts.name}: {overflow}")
        if isinstance(dist, WholeMatrix) and ts.size > WHOLE_MAX_ELEMENTS:
            raise SpecError(f"{where}.scheme" if by == "layer" else "scheme",
                            f"{dist.name} is drawn as a whole matrix, limited to {WHOLE_MAX_ELEMENTS} elements; "
                            f"{ts.name} has {ts.size}", limit="whole_matrix_elements", requested=ts.size,
                            allowed=WHOLE_MAX_ELEMENTS)
        warns = policies.warnings_for(ts, dist, dist.variance())
        plans.append(TensorPlan(ts, pos, d["seed"], dtype, spec, by, why, resolved, warns))
    selected = plans
    if d["tensors"] is not None:
        chosen = selection.select(tensor_names, d["tensors"])
        selected = [p for p in plans if p.name in chosen]
    if d["rng"] == "torch":
        from .torch_replay import TorchReplay

        replay = TorchReplay(layers, plans, selected, d["seed"])
        for p in plans:
            p.replay = replay
    return Plan(d, layers, plans, selected)
