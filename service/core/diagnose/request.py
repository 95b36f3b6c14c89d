"""A diagnose request: the request document plus ``schemes``, ``batch`` and ``spatial_size``, and the
network it describes (``Probe``), validated before anything is drawn.

The fields are declared here once (``FIELDS``); the boundary validates them (``service.document``)
and builds a ``DiagnoseRequest``. What only the engine knows is checked in ``build_probe``: which
layers can run forward (their type's ``forward``), that consecutive layers fit, that softmax is
last, and every scheme against every tensor (each scheme's plan is built, nothing drawn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .. import layers
from ..document import Request
from ..errors import SpecError
from ..fields import Field, Integer, IntOrShortList, NotApplicable, SchemeList
from ..plan import Plan, build_plan
from .network import Stage

BATCH_MIN = 2
BATCH_MAX = 4096
BATCH_DEFAULT = 128
SCHEMES_MAX = 8
SPATIAL_MAX = 1024
SPATIAL_DEFAULT = {1: (32,), 2: (16, 16)}
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
)


@dataclass(frozen=True)
class DiagnoseRequest:
    """A validated diagnose document."""

    request: Request
    schemes: tuple | None           # normalized scheme specs, or None: the request's scheme
    batch: int
    spatial_size: object = None     # an integer or a list, as given; None: the default


@dataclass(frozen=True)
class Probe:
    """A diagnose request ready to run: the engine document, one Plan per scheme, the network."""

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
    return Probe(d.request.document, tuple(specs), tuple(plans), d.batch, spatial, input_shape, tuple(stages))


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
                raise SpecError(f"{where}.in_features", f"must equal the previous layer's output size {cur[0]}, got {n_in}")
            stages.append(Stage(layer.index, layer.name, "dense", act, (n_in,), (n_out,), flatten=flatten))
            cur = (n_out,)
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
            stages.append(Stage(layer.index, layer.name, layer.type, act, cur, out, kernel=kernel, groups=g))
            cur = out
    return stages, input_shape, spatial
