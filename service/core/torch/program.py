"""The steps ``rng: "torch"`` replays on PyTorch's stream, in order: what a model's ``__init__`` does.

A program is a list of these. ``core.torch.replay`` builds the default one (every layer's module
constructed in document order, then each tensor's init call in ``named_parameters()`` order) and
runs any program; a recipe (``core.recipes``) whose reference model draws in another order gives its
own (nanoGPT's: ``self.apply(self._init_weights)``, then the ``c_proj`` re-draw). This file imports
nothing of the engine, so that recipes can name the steps without importing the replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Construct:
    """A layer's ``torch.nn`` module constructed: its constructor's draws; the values its tensors keep
    unless a later ``Draw`` replaces them."""

    layer: Any                 # core.layers.Layer


@dataclass(frozen=True)
class Module:
    """A module the document does not hold, constructed for its draws alone (nanoGPT's ``lm_head``, tied
    to ``wte``): ``core.torch.modules.MODULES[name](gen, **kwargs)``."""

    name: str
    kwargs: tuple = ()         # sorted (name, value) pairs
    size: int = 0              # the values its constructor draws (what max_torch_elements counts)


@dataclass(frozen=True)
class Draw:
    """An init call on one tensor: ``method`` and ``kwargs`` as ``core.torch.replay.torch_call`` gives
    them (None: the tensor's own call, the one it reports). ``keep``: its values are the tensor's (False:
    a later call overwrites them, but its draws still advance the stream)."""

    tensor: Any                # core.plan.TensorPlan
    method: str | None = None
    kwargs: tuple = ()
    keep: bool = True


def normal(tensor, std: float, *, keep: bool) -> Draw:
    """``torch.nn.init.normal_(w, mean=0.0, std=std)`` on the tensor."""
    return Draw(tensor, "normal_", (("mean", 0.0), ("std", std)), keep)
