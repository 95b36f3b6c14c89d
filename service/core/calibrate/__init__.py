"""Data-free LSUV calibration (``POST /v1/calibrate``): the request's weights, rescaled layer by layer
until each layer's outputs have unit std on a seeded probe batch, run on the diagnose engine.

By concern: ``request`` (the document's fields, ``Calibration``, ``CalibrateRequest``), ``lsuv``
(the algorithm, and how it follows the ``lsuv`` package and the paper), ``run`` (the job, its cost
and limits, the calibrated plan the output formats write).
"""

from .lsuv import EPS, LayerResult, calibrate, output_std
from .request import (CALIBRATION_FIELDS, FIELDS, MAX_ITERATIONS_DEFAULT, MAX_ITERATIONS_MAX, SCHEME_DEFAULT,
                      TOLERANCE_DEFAULT, CalibrateRequest, Calibration)
from .run import CALIBRATE_VERSION, LIMITS, CalibratedPlan, Job, build, check_limits, estimate_cost, run

__all__ = ["EPS", "LayerResult", "calibrate", "output_std", "CALIBRATION_FIELDS", "FIELDS", "MAX_ITERATIONS_DEFAULT",
           "MAX_ITERATIONS_MAX", "SCHEME_DEFAULT", "TOLERANCE_DEFAULT", "CalibrateRequest", "Calibration",
           "CALIBRATE_VERSION", "LIMITS", "CalibratedPlan", "Job", "build", "check_limits", "estimate_cost", "run"]
