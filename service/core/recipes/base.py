"""What a recipe is: a scheme of the registry (``family: recipe``, its parameters, formula and paper)
that chooses per tensor from the tensor's role in its model (``core.roles``), like the framework
policies (``core.policies``) but reading the whole model: how many residual branches it has, how wide
it is.

A recipe's ``choose(t, layer, spec, model)`` returns ``(Choice, reason)`` for a weight or raw tensor:
an ordinary registry scheme (``normal``, ``zeros``, ``he_normal``, ...) with its parameters, which
``core.policies`` normalizes and the engine resolves and draws, and the reason the tensor's
``reason`` reports. (A recipe names the scheme rather than normalizing it itself: ``core.schemes``
lists the recipes, so they cannot import it.) Biases get ``bias`` (default: zeros, as
every recipe here starts them) and norm layers keep 1 and 0 (``core.policies.choose`` sees to both).
Each recipe lives in a file of its own with its formula, reasoning and paper in its docstring and in
its ``Scheme`` (``GET /v1/schemes``), and names the reference implementation its tests check it
against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import roles
from ..scheme_entry import Scheme


@dataclass(frozen=True)
class Model:
    """What recipes read about the whole model, counted once per plan."""

    #: Layers whose role ends a residual branch (attn_out, mlp_out, residual_out): GPT-2's and
    #: Megatron's 2 * n_layer, Fixup's L.
    residual_branches: int
    #: Transformer blocks: the hf_config's layer count, else the number of attn_out layers.
    blocks: int
    #: The model's width where it has one (an hf_config's hidden size), else None.
    width: int | None
    #: Each layer's role, where known, by layer index.
    layer_roles: tuple

    @classmethod
    def of(cls, request) -> "Model":
        layer_roles = tuple(layer.role for layer in request.layers)
        residual = sum(1 for r in layer_roles if roles.is_residual(r))
        hf = request.hf
        if hf is not None:
            return cls(residual, hf.blocks, hf.width, layer_roles)
        return cls(residual, sum(1 for r in layer_roles if r == "attn_out"), None, layer_roles)


@dataclass(frozen=True)
class Choice:
    """A registry scheme and its parameters, as a recipe picks it for one tensor."""

    name: str
    params: tuple = ()  # sorted (name, value) pairs: hashable, like the memoized specs they become


def use(name: str, **params) -> Choice:
    return Choice(name, tuple(sorted(params.items())))


#: (weight tensor (core.layers.TensorSpec), its Layer, the request's normalized recipe spec, the model)
#: -> (Choice, reason). The layers are not imported here: core.layers imports core.schemes, which lists
#: the recipes.
Choose = Callable[[Any, Any, dict, Model], tuple[Choice, str]]


@dataclass(frozen=True)
class Recipe:
    scheme: Scheme          # name, formula, parameters, paper: GET /v1/schemes
    choose: Choose
    #: The reference implementation the tests check it against.
    reference: str = ""
    #: ``rng: "torch"``: (the request's normalized spec, [(Layer, its TensorPlans in named_parameters()
    #: order)]) -> the steps of ``core.torch.program`` its reference model draws in, when that is not the
    #: default order (every constructor, then every tensor's call); may raise SpecError. None: the default.
    torch_program: Callable[[dict, list], list] | None = None
