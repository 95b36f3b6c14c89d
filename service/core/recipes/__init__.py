"""Initialization recipes by role: one file per recipe (its formula, reasoning and paper, its scheme
entry and its rule), this registry the one list the scheme registry (``core.schemes``, family
``recipe``) and the policy chooser (``core.policies``) read.

Import order: ``core.schemes`` imports this package after defining ``Scheme`` and ``Param`` (the
recipes' descriptors use them); the recipes reach the rest of ``core.schemes`` only when they run.
"""

from __future__ import annotations

from . import gpt2, megatron, nanogpt
from .base import Choice, Model, Recipe, use

REGISTRY: dict[str, Recipe] = {r.scheme.name: r for r in (gpt2.RECIPE, nanogpt.RECIPE, megatron.RECIPE)}

__all__ = ["REGISTRY", "Choice", "Model", "Recipe", "use"]
