"""The pure-NumPy initialization engine. Imports neither Flask nor marshmallow (a test checks).

Entry points: ``build_plan(document) -> Plan``; ``Plan.selected`` holds ``TensorPlan``s whose
``theory()`` describes them and ``generate()`` / ``blocks()`` draw their values.
"""

from .errors import SpecError
from .plan import Plan, TensorPlan, build_plan, engine_info, normalize_document
from .schemes import ALIASES, ALL_NAMES, SCHEMES

__all__ = ["SpecError", "Plan", "TensorPlan", "build_plan", "engine_info", "normalize_document", "SCHEMES",
           "ALIASES", "ALL_NAMES"]
