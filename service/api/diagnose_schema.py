"""The body of ``POST /v1/diagnose``: the request document plus ``schemes``, ``batch`` and
``spatial_size`` (see ``service.core.diagnose``), validated structurally like every body.

Unknown fields are rejected, the ``schemes`` list is bounded (``SCHEMES_MAX``), ``batch`` is
bounded by the engine's ceiling here (422) and by configuration (``diagnose_max_batch``) in the
view (413, like every configured limit). ``tensors`` does not apply (the whole network runs).
Which layer types and activations can run, and whether consecutive layers fit, is the
engine's to say (``parse_request``), as a 422 naming the field.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from ..core.diagnose import BATCH_MAX, BATCH_MIN, SCHEMES_MAX, SPATIAL_MAX
from ..schemas import BoundedList, RequestSchema, SchemeField, StrictInteger


class NotApplicable(fields.Field):
    """A request-document field this endpoint does not take (null is tolerated)."""

    def __init__(self, why: str, **kw):
        self.why = why
        super().__init__(load_default=None, allow_none=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        raise ValidationError(self.why)


class SpatialSize(fields.Field):
    """An integer, or a list of 1 or 2 integers (conv1d / conv2d), each 1..SPATIAL_MAX."""

    def _deserialize(self, value, attr, data, **kw):
        values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(values, list) or not 1 <= len(values) <= 2:
            raise ValidationError("must be an integer or a list of 1 or 2 integers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValidationError("entries must be integers")
            if not 1 <= v <= SPATIAL_MAX:
                raise ValidationError(f"entries must be between 1 and {SPATIAL_MAX}")
        return value


class DiagnoseRequestSchema(RequestSchema):
    """``POST /v1/diagnose``."""

    tensors = NotApplicable("diagnose runs the whole network: tensor selection does not apply")
    schemes = BoundedList(SchemeField(), length=validate.Length(1, SCHEMES_MAX))
    batch = StrictInteger(validate=validate.Range(BATCH_MIN, BATCH_MAX))
    spatial_size = SpatialSize()
