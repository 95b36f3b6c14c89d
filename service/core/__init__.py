"""The pure-NumPy initialization engine. Imports neither Flask nor marshmallow nor the output layer
(a test checks).

Entry point: ``build_plan(request) -> Plan``, from a validated ``Request`` (``core.document``; the
boundary, ``service.document``, builds it). ``Plan.selected`` holds ``TensorPlan``s whose
``theory()`` describes them and whose ``generate()`` / ``blocks()`` draw their values.
docs/architecture.md maps the packages.
"""

from .document import Request
from .errors import SpecError
from .plan import Plan, TensorPlan, build_plan, engine_info
from .schemes import ALIASES, ALL_NAMES, SCHEMES

__all__ = ["Request", "SpecError", "Plan", "TensorPlan", "build_plan", "engine_info", "SCHEMES", "ALIASES", "ALL_NAMES"]
