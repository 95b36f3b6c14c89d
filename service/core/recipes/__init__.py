"""Initialization recipes by role: one file per recipe (its formula, reasoning and paper, its scheme
entry and its rule), this registry the one list the scheme registry (``core.schemes``, family
``recipe``) and the policy chooser (``core.policies``) read.

Import order: ``core.schemes`` imports this package after defining ``Scheme`` and ``Param`` (the
recipes' descriptors use them); the recipes reach the rest of ``core.schemes`` only when they run.
"""

from __future__ import annotations

from . import deepnorm, fixup, gpt2, megatron, mup, nanogpt, skipinit, t_fixup, timm_vit, zero
from .base import Choice, Model, Recipe, use

REGISTRY: dict[str, Recipe] = {r.scheme.name: r for r in (
    gpt2.RECIPE, nanogpt.RECIPE, megatron.RECIPE, mup.RECIPE, deepnorm.RECIPE, fixup.RECIPE, t_fixup.RECIPE,
    skipinit.RECIPE, zero.RECIPE, timm_vit.RECIPE,
)}

__all__ = ["REGISTRY", "Choice", "Model", "Recipe", "use"]
