"""The activations a layer may declare, and the rule of thumb each one calls for.

One registry: the request document's ``activation`` values, the ``auto`` policy, the variance
warnings, the schemes' recommended activations and the diagnostics all read it.

The rules (Glorot & Bengio 2010; He et al. 2015; Klambauer et al. 2017):

- ``xavier``: activations symmetric and linear around 0 (linear, tanh, sigmoid, softmax) keep the
  signal's variance when Var(W) = 2 / (fan_in + fan_out);
- ``he``: rectifiers (relu, leaky_relu and the smooth ones: elu, gelu, silu) zero about half of
  their inputs, so Var(W) = 2 / ((1 + a^2) fan_in) doubles it back (a: the leaky slope);
- ``lecun``: SELU's self-normalization assumes Var(W) = 1 / fan_in.

``saturating`` activations are bounded: weights that are too large push them into the flat part
where gradients vanish (the warning says so instead of "exploding").
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError
from .fields import Choice, Field, Number
from .gains import DEFAULT_LEAKY_SLOPE
RULES = ("xavier", "he", "lecun")


@dataclass(frozen=True)
class ActivationKind:
    name: str
    rule: str                 # xavier | he | lecun
    saturating: bool = False  # bounded: large weights saturate it
    #: The PyTorch gain (``calculate_gain`` name) ``auto`` puts on Xavier for this activation: tanh
    #: contracts the signal a little at every layer, which the gain 5/3 compensates.
    auto_gain: str | None = None


#: In the order the API lists them (``ActivationName``).
REGISTRY: dict[str, ActivationKind] = {a.name: a for a in (
    ActivationKind("linear", "xavier"),
    ActivationKind("relu", "he"),
    ActivationKind("leaky_relu", "he"),
    ActivationKind("elu", "he"),
    ActivationKind("gelu", "he"),
    ActivationKind("silu", "he"),
    ActivationKind("tanh", "xavier", saturating=True, auto_gain="tanh"),
    ActivationKind("sigmoid", "xavier", saturating=True),
    ActivationKind("selu", "lecun"),
    ActivationKind("softmax", "xavier", saturating=True),
)}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def following(rule: str) -> tuple[str, ...]:
    """The activations whose rule of thumb is ``rule`` (a scheme's recommended activations)."""
    return tuple(a.name for a in REGISTRY.values() if a.rule == rule)


@dataclass(frozen=True)
class Activation:
    """A layer's activation: a registry name and, for leaky_relu, its negative slope."""

    name: str = "linear"
    negative_slope: float = DEFAULT_LEAKY_SLOPE

    @property
    def kind(self) -> ActivationKind:
        return REGISTRY[self.name]

    @property
    def slope(self) -> float:
        """The slope a of the rectifier's negative side (0 except for leaky_relu)."""
        return self.negative_slope if self.name == "leaky_relu" else 0.0

    def describe(self):
        return {"name": self.name, "negative_slope": self.negative_slope} if self.name == "leaky_relu" else self.name


def get(name: str) -> ActivationKind:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SpecError("activation", f"unknown activation {name!r}; expected one of {', '.join(NAMES)}") from None


#: The object form of a layer's ``activation``: ``{"name": ..., "negative_slope": ...}``.
OBJECT_FIELDS = (Field("name", Choice(NAMES, ref="ActivationName"), required=True),
                 Field("negative_slope", Number(0, 1e3), default=DEFAULT_LEAKY_SLOPE,
                       doc="leaky_relu's slope on the negative side"))
