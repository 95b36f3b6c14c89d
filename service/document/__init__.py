"""The boundary: a request body becomes a validated, typed request, once.

The schemas are generated from the engine's declarations (``schemas``), validate with marshmallow,
and load into the engine's typed objects (``core.document.Request``, ``core.layers.Layer``). Every
entry point of the service (HTTP, CLI) goes through ``load``; the engine never sees a raw document.
A bad document raises marshmallow's ``ValidationError``; ``flatten_messages`` turns its nested
messages into ``{"architecture.layers.0.in_features": [...]}``, the field paths clients depend on.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError

from ..core.calibrate import CalibrateRequest, Calibration
from ..core.diagnose import DiagnoseRequest
from ..core.document import Request
from ..core.plan import Plan, build_plan
from ..output.options import Options
from .schemas import CalibrateRequestSchema, DiagnoseRequestSchema, OptionsSchema, RequestSchema, WeightsRequestSchema
from .strict import instance

__all__ = ["load", "load_request", "plan", "load_weights_request", "load_diagnose_request", "load_calibrate_request",
           "load_options", "ValidationError",
           "flatten_messages", "RequestSchema", "WeightsRequestSchema", "DiagnoseRequestSchema",
           "CalibrateRequestSchema"]


def load(data, schema: type[Schema] = RequestSchema) -> tuple[Request, dict]:
    """Validate a request body with ``schema``: (the typed request, the fields ``schema`` adds to the
    request document, e.g. ``format``); raises ValidationError with per-field messages."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["the request body must be a JSON object"]})
    return instance(schema).load(data)


def load_request(data) -> Request:
    """A request document (nothing added): the typed request."""
    return load(data)[0]


def plan(data, *, max_tensors: int | None = None) -> Plan:
    """Validate a request document and plan it (nothing drawn): what every entry point does first."""
    return build_plan(load_request(data), max_tensors=max_tensors)


def load_weights_request(data) -> tuple[Request, str | None, Options]:
    """A ``/v1/weights`` body: (the typed request, its ``format`` or None, its output options)."""
    request, added = load(data, WeightsRequestSchema)
    return request, added.get("format"), Options(added["metadata"], added["max_shard_size"])


def load_options(data: dict) -> Options:
    """The output options of a ``/v1/weights`` body alone (``metadata``, ``max_shard_size``), checked as
    the body is: what ``weightinit fetch`` needs to name the artifact's ETag."""
    loaded = instance(OptionsSchema).load({k: data[k] for k in OptionsSchema().fields if k in data})
    return Options(loaded["metadata"], loaded["max_shard_size"])


def load_diagnose_request(data) -> DiagnoseRequest:
    """A ``/v1/diagnose`` body: the typed diagnose request."""
    request, added = load(data, DiagnoseRequestSchema)
    schemes = added.get("schemes")
    residual = added.get("residual")
    return DiagnoseRequest(request, tuple(schemes) if schemes is not None else None, added["batch"],
                           added.get("spatial_size"), tuple(residual) if residual is not None else None,
                           added.get("tokens"), added.get("heads"))


def load_calibrate_request(data) -> CalibrateRequest:
    """A ``/v1/calibrate`` body: the typed calibrate request (its ``format`` and output options included)."""
    request, added = load(data, CalibrateRequestSchema)
    return CalibrateRequest(request, Calibration(**added["calibration"]), added.get("format"),
                            Options(added["metadata"], added["max_shard_size"]))


def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages -> {"architecture.layers.0.in_features": [...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for k, v in messages.items():
            key = prefix if k == "_schema" and prefix else f"{prefix}.{k}" if prefix else str(k)
            for field, msgs in flatten_messages(v, key).items():
                out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list):
        for m in messages:
            for field, msgs in flatten_messages(m, prefix).items():
                out.setdefault(field, []).extend(msgs)
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out
