"""A diagnose request: the request document plus ``schemes``, ``batch``, ``spatial_size``, and for
residual and transformer networks ``residual``, ``tokens`` and ``heads``; and the network it describes
(``Probe``), validated before anything is drawn.

The fields are declared here once (``FIELDS``); the boundary validates them (``service.document``)
and builds a ``DiagnoseRequest``. What only the engine knows is checked in ``build_probe``: which
layers can run forward (their type's ``forward``), that consecutive layers fit, that softmax is
last, that residual branches end in a layer whose role says so (``core.roles``: the recipes read the
same role) and give back the shape they were given, that an attention's fused q, k, v projection fits
its heads, and every scheme against every tensor (each scheme's plan is built, nothing drawn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .. import layers, roles
from ..document import MAX_LAYERS_HARD, Request
from ..errors import SpecError
from ..fields import Field, Integer, IntOrShortList, NotApplicable, RangeList, SchemeList
from ..plan import Plan, build_plan
from .network import Stage

BATCH_MIN = 2
BATCH_MAX = 4096
BATCH_DEFAULT = 128
SCHEMES_MAX = 8
SPATIAL_MAX = 1024
SPATIAL_DEFAULT = {1: (32,), 2: (16, 16)}
TOKENS_MAX = 1024
TOKENS_DEFAULT = 16
HEADS_MAX = 1024
#: The roles that end a residual branch (attn_out, mlp_out, residual_out).
RESIDUAL_ROLES = tuple(name for name, r in roles.ROLES.items() if r.residual)
#: The layer types that can run forward, in the registry's order.
RUNNABLE = tuple(name for name, kind in layers.REGISTRY.items() if kind.forward)

#: What the diagnose document adds to the request document (and takes away: ``tensors``).
FIELDS: tuple[Field, ...] = (
    Field("tensors", NotApplicable("diagnose runs the whole network: tensor selection does not apply")),
    Field("schemes", SchemeList(1, SCHEMES_MAX),
          doc=f"1 to {SCHEMES_MAX} schemes to compare, each replacing the request's `scheme` in turn (a layer's own "
              "`scheme` still wins); default `[scheme]`."),
    Field("batch", Integer(BATCH_MIN, BATCH_MAX), default=BATCH_DEFAULT,
          doc="Examples in the seeded probe batch (the configured maximum, `diagnose_max_batch`, defaults to 1024)."),
    Field("spatial_size", IntOrShortList(2, SPATIAL_MAX),
          doc="The probe's spatial size when the first layer is a convolution (default 32 for conv1d, 16 x 16 for "
              "conv2d)."),
    Field("residual", RangeList(MAX_LAYERS_HARD, MAX_LAYERS_HARD - 1),
          doc="Residual branches, each `[first, last]` by layer index: the stream entering layer `first` is added to "
              f"the output of layer `last`, whose `role` must end a branch ({', '.join(RESIDUAL_ROLES)}). A "
              "layernorm as a branch's first layer makes it pre-LN; one right after the branch, post-LN. The response "
              "then reports the stream after every branch (`stream`)."),
    Field("tokens", Integer(1, TOKENS_MAX),
          doc=f"Tokens per probe example when a dense layer has role `attn_qkv` (default {TOKENS_DEFAULT}): the "
              "probe is a batch of sequences, and dense and layernorm layers act on every token."),
    Field("heads", Integer(1, HEADS_MAX),
          doc="Attention heads (default 1). A dense layer with role `attn_qkv` projects to fused q, k, v (3 x E, "
              "GPT-2's c_attn); self-attention over the tokens, with `heads` heads, gives the next layer E features."),
)


@dataclass(frozen=True)
class DiagnoseRequest:
    """A validated diagnose document."""

    request: Request
    schemes: tuple | None           # normalized scheme specs, or None: the request's scheme
    batch: int
    spatial_size: object = None     # an integer or a list, as given; None: the default
    residual: tuple | None = None   # ((first, last), ...) layer indices, or None: no residual branches
    tokens: int | None = None       # None: TOKENS_DEFAULT when the network has an attention
    heads: int | None = None        # None: 1


@dataclass(frozen=True)
class Probe:
    """A diagnose request ready to run: the engine document, one Plan per scheme, the network."""

    document: dict           # the normalized engine document (the request's `scheme` kept)
    schemes: tuple           # normalized scheme specs, request order
    plans: tuple             # one Plan per scheme (nothing generated yet)
    batch: int
    spatial_size: tuple | None
    input_shape: tuple       # per example: (tokens, features) for a sequence
    stages: tuple
    residual: tuple = ()     # ((first, last), ...) as given
    tokens: int | None = None
    heads: int | None = None

    @property
    def seed(self) -> int:
        return self.document["seed"]

    def request(self) -> dict:
        """The normalized request, as echoed in the response."""
        out = {**self.document, "schemes": list(self.schemes), "batch": self.batch}
        out.pop("tensors", None)
        if self.spatial_size is not None:
            out["spatial_size"] = list(self.spatial_size)
        if self.residual:
            out["residual"] = [list(r) for r in self.residual]
        if self.tokens is not None:
            out["tokens"], out["heads"] = self.tokens, self.heads
        return out


def _scheme_field_error(e: SpecError, i: int, explicit: bool) -> SpecError:
    """An engine error about the request's ``scheme`` -> the same about ``schemes.i``."""
    if explicit and (e.field == "scheme" or e.field.startswith("scheme.")):
        return SpecError(f"schemes.{i}{e.field[len('scheme'):]}", e.message, limit=e.limit, requested=e.requested,
                         allowed=e.allowed)
    return e


def build_probe(d: DiagnoseRequest) -> Probe:
    """The network and one plan per scheme; SpecError names the first field the engine cannot run."""
    explicit = d.schemes is not None
    specs = list(d.schemes) if explicit else [d.request.scheme]
    plans = []
    for i, spec in enumerate(specs):
        try:
            plans.append(build_plan(replace(d.request, scheme=spec)))
        except SpecError as e:
            raise _scheme_field_error(e, i, explicit) from None
    stages, input_shape, spatial = _stages(plans[0], d.spatial_size)
    stages, input_shape, tokens, heads = _attention(stages, input_shape, d)
    stages = _residual(stages, plans[0], d.residual or ())
    return Probe(d.request.document, tuple(specs), tuple(plans), d.batch, spatial, input_shape, tuple(stages),
                 tuple(d.residual or ()), tokens, heads)


def _attention(stages: list, input_shape: tuple, d: DiagnoseRequest):
    """Stages with their tokens and attention heads: (stages, input shape per example, tokens, heads), tokens
    and heads None when no layer has role attn_qkv."""
    qkv = [st for st in stages if st.role == "attn_qkv"]
    if not qkv:
        for name in ("tokens", "heads"):
            if getattr(d, name) is not None:
                raise SpecError(name, "applies only when a dense layer has role attn_qkv (an attention)")
        return stages, input_shape, None, None
    tokens = d.tokens if d.tokens is not None else TOKENS_DEFAULT
    heads = d.heads if d.heads is not None else 1
    for st in qkv:
        where = f"architecture.layers.{st.index}"
        if st.type != "dense":
            raise SpecError(f"{where}.type", f"an attn_qkv layer must be dense (fused q, k, v); got {st.type!r}")
        if st.activation.name != "linear":
            raise SpecError(f"{where}.activation", "an attn_qkv layer is linear: the attention follows it")
        if st.units % (3 * heads):
            raise SpecError(f"{where}.out_features", f"an attn_qkv layer projects to fused q, k, v: out_features must "
                                                      f"be a multiple of 3 x heads = {3 * heads}, got {st.units}")
        if st.index == stages[-1].index:
            raise SpecError(f"{where}.role", "an attn_qkv layer cannot be the last layer: its attention feeds the next")
    if len(input_shape) != 1:
        raise SpecError("architecture.layers.0.type", "an attention runs on a sequence of vectors: the network "
                                                      "must start with a dense or layernorm layer")
    stages = [replace(st, tokens=tokens, heads=heads if st.role == "attn_qkv" else 0) for st in stages]
    return stages, (tokens, *input_shape), tokens, heads


def _residual(stages: list, plan: Plan, branches) -> list:
    """Stages with their residual branches marked; SpecError for a branch that cannot be added to its stream."""
    out = list(stages)
    for i, (first, last) in enumerate(branches):
        where = f"residual.{i}"
        if last >= len(stages):
            raise SpecError(where, f"layer index {last} is beyond the network's {len(stages)} layers")
        end = plan.layers[last]
        if end.role not in RESIDUAL_ROLES:
            raise SpecError(where, f"layer {end.name} ends a residual branch: its role must be one of "
                                   f"{', '.join(RESIDUAL_ROLES)} (the recipes scale or zero it by that role); got "
                                   f"{end.role if end.role is not None else 'none'}")
        given, back = stages[first].in_shape, stages[last].next_shape
        if stages[first].flatten or given != back:
            raise SpecError(where, f"the branch's output shape {list(back)} must equal the shape it is given "
                                   f"{list(given)}: the two are added")
        out[first] = replace(out[first], branch_start=True)
        out[last] = replace(out[last], branch_end=True)
    return out


def _stages(plan: Plan, spatial_raw):
    first = plan.layers[0]
    first_kind = layers.get(first.type)
    spatial = None
    if first_kind.forward == "conv":
        d = first_kind.dims
        if spatial_raw is None:
            spatial = SPATIAL_DEFAULT[d]
        else:
            if isinstance(spatial_raw, int) and not isinstance(spatial_raw, bool):
                spatial_raw = [spatial_raw] * d
            if not isinstance(spatial_raw, list) or len(spatial_raw) != d:
                raise SpecError("spatial_size", f"must be an integer or a list of {d} integers for a {first.type} input")
            spatial = tuple(spatial_raw)
    elif spatial_raw is not None:
        raise SpecError("spatial_size", "applies only when the first layer is a conv1d or conv2d layer")

    stages = []
    cur = None
    input_shape = None
    attention = False  # the previous layer was an attention's q, k, v projection
    last = len(plan.layers) - 1
    for layer in plan.layers:
        where = f"architecture.layers.{layer.index}"
        kind = layers.get(layer.type)
        if not kind.forward:
            raise SpecError(f"{where}.type", f"diagnose runs {', '.join(RUNNABLE)} layers only (convs with stride 1 "
                                             f"and 'same' padding); got {layer.type!r}")
        act = layer.activation
        if act.name == "softmax" and layer.index != last:
            raise SpecError(f"{where}.activation", "softmax is allowed on the last layer only")
        f = layer.params
        flatten = False
        if kind.forward == "dense":
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
                what = "the attention's width (its q, k, v projection's out_features / 3)" if attention else \
                    "the previous layer's output size"
                raise SpecError(f"{where}.in_features", f"must equal {what} {cur[0]}, got {n_in}")
            stages.append(Stage(layer.index, layer.name, "dense", act, (n_in,), (n_out,), flatten=flatten,
                                role=layer.role))
            attention = layer.role == "attn_qkv"
            if attention and n_out % 3:
                raise SpecError(f"{where}.out_features", f"an attn_qkv layer projects to fused q, k, v: out_features "
                                                          f"must be a multiple of 3, got {n_out}")
            cur = (n_out // 3,) if attention else (n_out,)
            continue
        attention = False
        if kind.forward == "norm":
            shape = tuple(kind.shape(layer))
            if cur is None:
                cur = shape
                input_shape = cur
            if len(cur) != 1 or shape != cur:
                raise SpecError(f"{where}.normalized_shape", f"must equal the features of each vector it normalizes "
                                                             f"{list(cur[:1]) if len(cur) == 1 else list(cur)} (diagnose "
                                                             f"runs layernorm over dense features), got {list(shape)}")
            stages.append(Stage(layer.index, layer.name, "layernorm", act, cur, cur, role=layer.role))
        else:
            d = kind.dims
            cin, cout, g = f["in_channels"], f["out_channels"], f["groups"]
            kernel = kind.kernel(layer)
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
            stages.append(Stage(layer.index, layer.name, layer.type, act, cur, out, kernel=kernel, groups=g,
                                role=layer.role))
            cur = out
    return stages, input_shape, spatial
