"""Signal-propagation diagnostics: why initialization matters, measured (``POST /v1/diagnose``).

Each requested scheme's weights are drawn with the engine (the same weights and biases
``/v1/weights`` returns), a seeded batch of standard-normal inputs is pushed forward through the
network in float64, then a seeded output gradient backward; per layer and per scheme the response
says what the classic notes claim: zero and constant weights are symmetric, small ones vanish,
large ones saturate or explode, and tanh -> Xavier, ReLU -> He keep the signal. docs/diagnose.md
has what is measured, the thresholds and why.

By concern: ``request`` (the document's fields, ``DiagnoseRequest``, the ``Probe`` and its network
stages), ``cost`` (the estimate and the limits, before anything runs), ``network`` (forward and
backward), ``measure`` (statistics), ``verdict`` (verdicts, explanations, warnings), ``run`` (the
response).
"""

from .cost import LIMITS, check_limits, estimate_cost
from .request import (BATCH_DEFAULT, BATCH_MAX, BATCH_MIN, FIELDS, RUNNABLE, SCHEMES_MAX, SPATIAL_MAX, DiagnoseRequest,
                      Probe, build_probe)
from .run import DIAGNOSE_VERSION, PROBE_KEY, THRESHOLDS, diagnose, fingerprint, probe_streams, run
from .verdict import VERDICTS

__all__ = ["LIMITS", "check_limits", "estimate_cost", "BATCH_DEFAULT", "BATCH_MAX", "BATCH_MIN", "FIELDS", "RUNNABLE",
           "SCHEMES_MAX", "SPATIAL_MAX", "DiagnoseRequest", "Probe", "build_probe", "DIAGNOSE_VERSION", "PROBE_KEY",
           "THRESHOLDS", "diagnose", "fingerprint", "probe_streams", "run", "VERDICTS"]
