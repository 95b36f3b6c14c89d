"""Which scheme each tensor gets: the request's, the layer's, or a policy's choice.

Policies (``auto``, ``torch_default``, ``keras_default``, ``hf_default``) and the recipes
(``core.recipes``: ``gpt2``, ...) pick per tensor; explicit schemes
apply as given. Also here: the warnings about the classic failure modes, measured against
the variance the rules of thumb recommend for the layer's activation.
"""

from __future__ import annotations

import math
from fractions import Fraction

from . import layers, recipes, roles, schemes
from .activations import Activation
from .distributions import Constant, WholeMatrix
from .gains import calculate_gain
from .layers import Layer, TensorSpec

#: A weight's variance this many times below/above the recommended one draws a warning
#: (a factor 2 in std: after 10 layers the signal is ~1000x off).
WARN_FACTOR = 4.0


def rule_of_thumb(a: Activation) -> tuple[dict, str]:
    """(the scheme spec of the rule of thumb for activation ``a``, the rule in words).

    The one place the rules are written down: ``auto`` gives every weight this spec, and the
    diagnostics' advice names it in these words, so the two never disagree.
    """
    kind = a.kind
    if kind.rule == "he":
        slope = a.slope
        spec = schemes.spec("he_normal", negative_slope=slope)
        return spec, f"He initialization (he_normal{f' with negative_slope {slope:g}' if slope else ''})"
    if kind.rule == "lecun":
        return schemes.spec("lecun_normal"), "LeCun normal (lecun_normal)"
    if kind.auto_gain:
        # Xavier's derivation assumes the linear regime; tanh contracts the signal a little at every
        # layer, which PyTorch's gain 5/3 compensates (without it a 20-layer tanh net loses ~4x of std).
        return (schemes.spec("xavier_uniform", gain=kind.auto_gain),
                f"Xavier initialization with gain {_fraction(kind.auto_gain)} (xavier_uniform with gain {kind.auto_gain})")
    return schemes.spec("xavier_uniform"), "Xavier initialization (xavier_uniform)"


def _fraction(gain_name: str) -> Fraction:
    """A rational gain as the rules write it (tanh: 5/3)."""
    return Fraction(calculate_gain(gain_name)).limit_denominator(12)


def auto_choice(t: TensorSpec) -> tuple[dict, str]:
    """The rule of thumb for the layer's activation (``rule_of_thumb``), and why."""
    a = t.activation
    kind = a.kind
    spec, _ = rule_of_thumb(a)
    if kind.rule == "he":
        slope = a.slope
        why = (f"activation {a.name} -> he_normal{f' (negative_slope {slope})' if slope else ''}: "
               "a rectifier zeroes about half of its inputs, so the weights need twice the variance (He et al. 2015)")
    elif kind.rule == "lecun":
        why = f"activation {a.name} -> lecun_normal: the initialization SELU's self-normalization assumes (Klambauer et al. 2017)"
    elif kind.auto_gain:
        why = (f"activation {a.name} -> xavier_uniform with gain {_fraction(kind.auto_gain)} "
               f"(PyTorch's calculate_gain('{kind.auto_gain}')): keeps activation and gradient variance constant "
               f"across layers (Glorot & Bengio 2010), the gain making up for {a.name}'s contraction")
    else:
        why = (f"activation {a.name} -> xavier_uniform: keeps activation and gradient variance constant across "
               "layers for activations symmetric and linear around 0 (Glorot & Bengio 2010)")
    return spec, why


def hf_default_choice(t: TensorSpec, layer: Layer, spec: dict) -> tuple[dict, str]:
    """What transformers' ``_init_weights`` draws for this tensor (the layer type's
    ``transformers_default``): std = ``initializer_range or 0.02``, where initializer_range is the
    scheme's own parameter, else the hf_config's (``layer.init["range"]``). A model family's own rule
    rides on ``layer.init`` (its ``why``): N(0, (initializer_range x ``factor``)^2) for the layer's
    weight (GPT-2's Conv1D, its residual projections scaled by 1/sqrt(2 n_layer)); ``as_given``: the
    family reads the config's initializer_range without ``or 0.02`` (GPT-2: 0.0 draws zeros)."""
    init = layer.init or {}
    kind = layers.get(t.layer_type)
    given = init.get("range")
    if spec.get("initializer_range"):
        r = spec["initializer_range"]
    elif init.get("as_given") and given is not None:
        r = given
    else:
        r = given or DEFAULT_INITIALIZER_RANGE
    if "why" not in init:  # no rule of the model family's own: PreTrainedModel._init_weights's
        return kind.transformers_default(t, r)
    factor = init.get("factor", 1.0)
    std = r * factor
    scale = (f"N(0, (initializer_range x {init['factor_text']})^2), std {r:g} x {factor:.6g} = {std:.6g}"
             if "factor" in init else f"N(0, initializer_range^2), initializer_range {r:g}")
    why = f"transformers {layers.TRANSFORMERS} {init['why']}: {scale}"
    if std == 0 and t.role != "bias":  # normal_(std=0) writes the mean
        return schemes.spec("zeros"), why
    return kind.transformers_default(t, std, why)


#: transformers' ``initializer_range or 0.02``.
DEFAULT_INITIALIZER_RANGE = 0.02

def _recipe(recipe: recipes.Recipe):
    """The recipe's rule, its choice normalized into the engine's memoized spec."""
    def chosen(t: TensorSpec, layer: Layer, spec: dict, model: recipes.Model) -> tuple[dict, str]:
        choice, why = recipe.choose(t, layer, spec, model)
        return schemes.spec(choice.name, **dict(choice.params)), why
    return chosen


#: name -> (tensor, layer, the normalized spec, the model) -> (scheme spec, reason); the recipes too.
POLICIES = {
    "auto": lambda t, layer, spec, model: auto_choice(t),
    "torch_default": lambda t, layer, spec, model: layers.get(t.layer_type).torch_default(t),
    "keras_default": lambda t, layer, spec, model: layers.get(t.layer_type).keras_default(t),
    "hf_default": lambda t, layer, spec, model: hf_default_choice(t, layer, spec),
    **{name: _recipe(r) for name, r in recipes.REGISTRY.items()},
}


def choose(t: TensorSpec, request_scheme: dict, request_bias: dict | None, layer: Layer,
           model: recipes.Model) -> tuple[dict, str, str]:
    """(scheme spec, chosen_by, reason) for one tensor; ``model``: what the recipes read of the whole model."""
    fixed = (layer.init or {}).get("value")
    if fixed is not None:  # the model family fixes it (gemma's RMSNorm scale 1 + w starts at w = 0)
        return schemes.spec("constant", value=fixed), "model", layer.init["why"]
    layer_scheme, layer_bias = layer.scheme, layer.bias
    if t.role in ("bias", "norm_bias"):
        if layer_bias is not None:
            spec, by = layer_bias, "layer"
        elif t.role == "norm_bias":
            return schemes.spec("zeros"), "default", "normalization bias starts at 0 (shift-free)"
        elif request_bias is not None:
            spec, by = request_bias, "request"
        elif request_scheme["name"] in POLICIES and request_scheme["name"] != "auto":
            spec, by = request_scheme, "request"
        else:
            return schemes.spec("zeros"), "default", "biases start at zero unless `bias` says otherwise"
        if spec["name"] == "auto":
            return schemes.spec("zeros"), by, "auto: biases start at zero"
    elif t.role == "norm_weight":
        if layer_scheme is None:
            return schemes.spec("ones"), "default", "normalization scale starts at 1 (identity transform)"
        spec, by = layer_scheme, "layer"
    else:
        spec, by = (layer_scheme, "layer") if layer_scheme is not None else (request_scheme, "request")
    if spec["name"] in POLICIES:
        chosen, why = POLICIES[spec["name"]](t, layer, spec, model)
        return chosen, spec["name"], why
    return spec, by, f"{spec['name']} as requested ({by})"


def recommended_variance(t: TensorSpec) -> tuple[float, str] | None:
    """The variance the rules of thumb recommend for this weight, or None where none applies."""
    if t.role not in ("weight", "raw") or t.layer_type == "embedding":
        return None
    a = t.activation
    rule = a.kind.rule
    if rule == "he":
        return 2.0 / ((1 + a.slope * a.slope) * t.fan_in), "He"
    if rule == "lecun":
        return 1.0 / t.fan_in, "LeCun"
    return 2.0 / (t.fan_in + t.fan_out), "Xavier"


def warnings_for(t: TensorSpec, dist, variance: float) -> list[dict]:
    out = []
    weightlike = t.role in ("weight", "raw")
    if weightlike and isinstance(dist, Constant):
        if dist.value == 0 and roles.is_residual(t.layer_role):
            # A residual branch's last layer at 0 (ZerO, Fixup, SkipInit) starts its block as the identity on
            # purpose, and still learns: its input is not constant, so its units get different gradients.
            return out
        out.append({"code": "symmetric", "message": (
            f"every value is {dist.value:g}: all units of this layer compute the same output and receive the same "
            "gradient, so they stay identical and the network cannot learn (break the symmetry with random weights)")})
        return out
    rec = recommended_variance(t)
    if rec is None or isinstance(dist, WholeMatrix) and dist.name in ("identity", "dirac"):
        return out
    target, rule = rec
    ratio = variance / target
    if ratio < 1.0 / WARN_FACTOR:
        out.append({"code": "vanishing", "ratio": ratio, "message": (
            f"variance {variance:.3g} is {1 / ratio if ratio > 0 else math.inf:.3g}x below the {rule} variance "
            f"{target:.3g} for activation "
            f"{t.activation.name}: the signal shrinks at every layer like this one, and so do the gradients (vanishing)")})
    elif ratio > WARN_FACTOR:
        sat = t.activation.kind.saturating
        what = "pushes tanh/sigmoid units into saturation where gradients vanish" if sat else "grows the signal at every layer (exploding activations and gradients)"
        out.append({"code": "exploding", "ratio": ratio, "message": (
            f"variance {variance:.3g} is {ratio:.3g}x above the {rule} variance {target:.3g} for activation "
            f"{t.activation.name}: it {what}")})
    return out
