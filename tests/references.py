"""The recipes' reference packages that need torchvision (timm, and torchscale through timm), imported
with the CPU torch.

torchvision is not installed in the venv's site-packages but beside it, in ``.venv/reference-torchvision``
(scripts/test-deps.sh): transformers imports torchvision whenever it can find it (its image utilities,
from ``modeling_utils``), and would then fail as below for every test and benchmark that loads a model.
Only the imports here put it on ``sys.path``, after the fix below.

PyPI's torchvision wheels are CUDA builds: their C++ extension links libtorch_cuda, which the CPU
torch (2.13.0+cpu, scripts/test-deps.sh) does not have, so it does not load. torchvision's Python
modules work without it, but ``torchvision._meta_registrations`` registers fake kernels for
``torchvision::nms`` and ``torchvision::qnms`` without first checking that the extension defined
those operators (its other registrations check ``extension._has_ops()``), and the import fails with
"operator torchvision::nms does not exist". Defining the two schemas first lets it finish. timm and
torchscale use only torchvision's Python modules (FrozenBatchNorm2d, transforms); calling one of
its operators would still fail loudly (no kernel is registered), so nothing here can pass for them.
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from pathlib import Path

#: Where scripts/test-deps.sh installs torchvision (``pip install --target``), off the default path.
TORCHVISION_DIR = Path(sys.prefix) / "reference-torchvision"

#: The two unguarded schemas, as torchvision's C++ extension declares them (torchvision/csrc/ops/nms.cpp).
_UNGUARDED = ("nms", "qnms")


@functools.cache
def _define_unguarded(torch) -> None:
    """Once per process: a second definition is an error, and an import that failed (a missing
    dependency) must not turn into "registered multiple times" for every later test."""
    sys.path.append(str(TORCHVISION_DIR))
    for op in _UNGUARDED:
        torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def _torchvision():
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    import torch
    if not TORCHVISION_DIR.is_dir():
        raise ModuleNotFoundError(f"torchvision is not installed in {TORCHVISION_DIR}: run scripts/test-deps.sh")
    _define_unguarded(torch)
    with warnings.catch_warnings():
        # "Failed to load image Python extension": the C++ half we know is missing
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module("torchvision")


def timm():
    _torchvision()
    return importlib.import_module("timm")


def torchscale(module: str):
    """``torchscale.architecture.<module>`` (encoder, decoder, encoder_decoder, config)."""
    _torchvision()
    with warnings.catch_warnings():
        # torchscale 0.3.0 imports drop_path from timm.models.layers, deprecated in timm 1.x
        warnings.simplefilter("ignore", FutureWarning)
        return importlib.import_module(f"torchscale.architecture.{module}")
