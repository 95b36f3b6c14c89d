"""A calibrate request: the weights request document plus ``calibration`` (how LSUV runs), validated
before anything is drawn.

The fields are declared here once (``FIELDS``, ``CALIBRATION_FIELDS``); the boundary validates them
(``service.document``) into a ``CalibrateRequest``. What only the engine knows (which layers run
forward, that they fit together, the scheme against every tensor) is checked by the diagnose
engine's ``build_probe``, after ``runnable`` has named the first layer it cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import layers
from ..diagnose import BATCH_DEFAULT, BATCH_MAX, BATCH_MIN, RUNNABLE, SPATIAL_MAX
from ..document import SEED_MAX, Request
from ..errors import SpecError
from ..fields import Boolean, Field, Integer, IntOrShortList, NotApplicable, Number, Object, SchemeRef

#: lsuv 0.3.0's ``std_tol`` and the paper's Tol_var.
TOLERANCE_DEFAULT = 0.1
#: The paper's T_max (lsuv 0.3.0's ``max_attempts=10`` allows one correction more: see ``lsuv``).
MAX_ITERATIONS_DEFAULT = 10
MAX_ITERATIONS_MAX = 100
#: The starting scheme when the document names none: LSUV's orthonormal pre-initialization.
SCHEME_DEFAULT = "orthogonal"

#: The members of ``calibration``.
CALIBRATION_FIELDS: tuple[Field, ...] = (
    Field("tolerance", Number(0.0, 1.0), default=TOLERANCE_DEFAULT,
          doc="A layer is done when |std - 1| <= tolerance, std being the standard deviation of its outputs on the "
              "probe batch (lsuv's `std_tol`)."),
    Field("max_iterations", Integer(1, MAX_ITERATIONS_MAX), default=MAX_ITERATIONS_DEFAULT,
          doc="Most rescalings of one layer's weights (the paper's T_max); a layer that has not converged by then "
              "reports `converged: false`."),
    Field("batch", Integer(BATCH_MIN, BATCH_MAX), default=BATCH_DEFAULT,
          doc="Examples in the seeded standard-normal probe batch (at most `diagnose_max_batch`, configured)."),
    Field("probe_seed", Integer(0, SEED_MAX - 1), default=None, nullable=True,
          doc="Seed of the probe batch; default: the document's `seed`."),
    Field("bias_first", Boolean(), default=False,
          doc="Before rescaling a layer's weights, shift its bias so that each output unit has zero mean on the "
              "probe batch (the bias is then left alone). Not in the LSUV paper nor in lsuv; the order matters: the "
              "rescaling that follows moves the means again."),
    Field("spatial_size", IntOrShortList(2, SPATIAL_MAX),
          doc="The probe's spatial size when the first layer is a convolution (default 32 for conv1d, 16 x 16 for "
              "conv2d)."),
)

#: What the calibrate document changes in the weights request document.
FIELDS: tuple[Field, ...] = (
    Field("scheme", SchemeRef(), default=SCHEME_DEFAULT,
          doc="The starting weights, before calibration (default `orthogonal`, as in LSUV); a layer's own `scheme` "
              "still wins."),
    Field("tensors", NotApplicable("calibrate runs and returns the whole network: tensor selection does not apply")),
    Field("calibration", Object(CALIBRATION_FIELDS, ref="Calibration"), default={},
          doc="How LSUV runs: tolerance, iterations, the probe batch, bias handling."),
)


@dataclass(frozen=True)
class Calibration:
    """The validated ``calibration`` object."""

    tolerance: float = TOLERANCE_DEFAULT
    max_iterations: int = MAX_ITERATIONS_DEFAULT
    batch: int = BATCH_DEFAULT
    probe_seed: int | None = None
    bias_first: bool = False
    spatial_size: object = None     # an integer or a list, as given; None: the default

    def document(self, seed: int) -> dict:
        """The normalized object, as echoed (the probe seed resolved)."""
        out = {"tolerance": self.tolerance, "max_iterations": self.max_iterations, "batch": self.batch,
               "probe_seed": seed if self.probe_seed is None else self.probe_seed, "bias_first": self.bias_first}
        if self.spatial_size is not None:
            out["spatial_size"] = self.spatial_size
        return out


@dataclass(frozen=True)
class CalibrateRequest:
    """A validated calibrate document: the request, the calibration, the output format and options."""

    request: Request
    calibration: Calibration
    format: str | None
    options: object                 # output.options.Options


def runnable(request: Request) -> None:
    """SpecError naming the first layer the diagnose engine cannot run forward."""
    for layer in request.layers:
        if not layers.get(layer.type).forward:
            raise SpecError(f"architecture.layers.{layer.index}.type",
                            f"calibrate runs {', '.join(RUNNABLE)} layers forward (convs with stride 1 and 'same' "
                            f"padding); layer {layer.name!r} is a {layer.type!r}")
