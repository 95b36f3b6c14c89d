"""What a scheme of the registry is: its parameters (``Param``), what it may know of a tensor
(``Context``), what it resolves to (``Resolved``) and its entry (``Scheme``). ``core.schemes`` holds the
registry of these entries; the recipes (``core.recipes``) describe themselves with them too, which is
why they live apart from the registry: both import this file, neither imports the other's module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .distributions import Distribution
from .errors import SpecError
from .gains import GAIN_NAMES

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")

#: Every number a scheme accepts lies within this magnitude (no 1e308 std).
MAX_MAGNITUDE = 1e6


@dataclass(frozen=True)
class Param:
    """One scheme parameter: its JSON type, default and allowed range."""

    name: str
    type: str  # "number" | "integer" | "boolean" | "string" | "gain"
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple | None = None
    required: bool = False
    doc: str = ""

    def describe(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "description": self.doc}
        if not self.required:
            d["default"] = self.default
        else:
            d["required"] = True
        for key in ("minimum", "maximum"):  # `is not None`: a bound of 0 (0.0 == False) is still a bound
            v = getattr(self, key)
            if v is not None:
                d[key] = v
        for key in ("exclusive_minimum", "exclusive_maximum"):
            if getattr(self, key):
                d[key] = True
        if self.choices:
            d["choices"] = list(self.choices)
        if self.type == "gain":
            d["choices"] = list(GAIN_NAMES)
        return d

    def check(self, value: Any) -> Any:
        """The validated value, or a SpecError naming this parameter."""
        if value is None and not self.required:
            return self.default
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise SpecError(self.name, f"must be true or false, got {value!r}")
            return value
        if self.type == "string":
            if value not in (self.choices or ()):
                raise SpecError(self.name, f"must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.type == "gain" and isinstance(value, str):
            if value not in GAIN_NAMES:
                raise SpecError(self.name, f"must be a number or one of {', '.join(GAIN_NAMES)}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(self.name, f"must be a number, got {value!r}")
        if self.type == "integer" and (not float(value).is_integer()):
            raise SpecError(self.name, f"must be an integer, got {value!r}")
        if not math.isfinite(value):
            raise SpecError(self.name, "must be finite")
        lo = -MAX_MAGNITUDE if self.minimum is None else self.minimum
        hi = MAX_MAGNITUDE if self.maximum is None else self.maximum
        if value < lo or (self.exclusive_minimum and value == lo):
            raise SpecError(self.name, f"must be {'>' if self.exclusive_minimum else '>='} {lo}, got {value}")
        if value > hi or (self.exclusive_maximum and value == hi):
            raise SpecError(self.name, f"must be {'<' if self.exclusive_maximum else '<='} {hi}, got {value}")
        return int(value) if self.type == "integer" else float(value)


@dataclass(frozen=True)
class Context:
    """What a scheme may know about the tensor it initializes."""

    shape: tuple                # storage shape (in the request's layout)
    torch_shape: tuple          # the same tensor in PyTorch's (out, in, *k) view
    fan_in: int
    fan_out: int
    groups: int = 1
    gates: int = 1              # gate blocks of a recurrent tensor (4 for an LSTM's)


@dataclass(frozen=True)
class Resolved:
    """A scheme applied to one tensor: the distribution and the theory around it."""

    distribution: Distribution
    gain: float | None
    target_variance: float
    mode: str | None = None
    fan: float | None = None   # the n of Var = scale * gain^2 / n


#: The scheme families, the order GET /v1/schemes documents them in (openapi SchemeDescription.family).
FAMILIES = ("variance_scaling", "constant", "random", "structured", "policy", "recipe")


@dataclass(frozen=True)
class Scheme:
    name: str
    summary: str
    formula: str
    latex: str
    params: tuple[Param, ...]
    build: Callable[[dict, Context], Resolved] | None
    aliases: tuple[str, ...] = ()
    family: str = "other"      # one of FAMILIES
    recommended: tuple[str, ...] = ()
    keras: str | None = None
    torch: str | None = None
    paper: str | None = None
    preset: dict = field(default_factory=dict)  # for variance-scaling presets: scale/mode/distribution

    def check_params(self, given: dict) -> dict:
        """Validated parameters with defaults filled; SpecError names the bad one."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            raise SpecError(unknown[0], f"unknown parameter for scheme {self.name!r} (accepted: {accepted})")
        out = {}
        for p in self.params:
            # null is a value only where the default is null (dirac's groups); elsewhere it is no number
            if given.get(p.name, 0) is None and p.default is not None:
                raise SpecError(p.name, f"must be {'a number' if p.type in ('number', 'integer', 'gain') else p.type}, "
                                        f"got null (leave the parameter out for its default, {p.default!r})")
            if p.required and given.get(p.name) is None:
                raise SpecError(p.name, f"scheme {self.name!r} requires {p.name!r}")
            out[p.name] = p.check(given.get(p.name))
        if "truncate" in out and out["truncate"] and out.get("distribution", "normal") == "uniform":
            raise SpecError("truncate", "truncate applies to normal distributions only")
        if "low" in out and "high" in out and not out["low"] < out["high"]:
            raise SpecError("low", f"low ({out['low']}) must be < high ({out['high']})")
        return out

    def describe(self) -> dict:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "family": self.family,
            "summary": self.summary,
            "formula": self.formula,
            "latex": self.latex,
            "parameters": [p.describe() for p in self.params],
            "recommended_activations": list(self.recommended),
            "keras": self.keras,
            "torch": self.torch,
            "paper": self.paper,
            **({"preset": dict(self.preset)} if self.preset else {}),
        }
