"""Which scheme each tensor gets: the request's, the layer's, or a policy's choice.

Policies (``auto``, ``torch_default``, ``keras_default``) pick per tensor; explicit schemes
apply as given. Also here: the warnings about the classic failure modes, measured against
the variance the rules of thumb recommend for the layer's activation.
"""

from __future__ import annotations

import math

from . import schemes
from .distributions import Constant, WholeMatrix
from .layers import NORMS, TensorSpec

XAVIER_ACTIVATIONS = ("tanh", "sigmoid", "softmax", "linear")
HE_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu")

#: A weight's variance this many times below/above the recommended one draws a warning
#: (a factor 2 in std: after 10 layers the signal is ~1000x off).
WARN_FACTOR = 4.0


def auto_choice(t: TensorSpec) -> tuple[dict, str]:
    a = t.activation
    if a.name in HE_ACTIVATIONS:
        slope = a.negative_slope if a.name == "leaky_relu" else 0.0
        spec = schemes.normalize_spec({"name": "he_normal", "negative_slope": slope})
        why = (f"activation {a.name} -> he_normal{f' (negative_slope {slope})' if slope else ''}: "
               "a rectifier zeroes about half of its inputs, so the weights need twice the variance (He et al. 2015)")
    elif a.name == "selu":
        spec = schemes.normalize_spec("lecun_normal")
        why = "activation selu -> lecun_normal: the initialization SELU's self-normalization assumes (Klambauer et al. 2017)"
    elif a.name == "tanh":
        # Xavier's derivation assumes the linear regime; tanh contracts the signal a little at every
        # layer, which PyTorch's gain 5/3 compensates (without it a 20-layer tanh net loses ~4x of std).
        spec = schemes.normalize_spec({"name": "xavier_uniform", "gain": "tanh"})
        why = ("activation tanh -> xavier_uniform with gain 5/3 (PyTorch's calculate_gain('tanh')): keeps "
               "activation and gradient variance constant across layers (Glorot & Bengio 2010), the gain "
               "making up for tanh's contraction")
    else:
        spec = schemes.normalize_spec("xavier_uniform")
        why = (f"activation {a.name} -> xavier_uniform: keeps activation and gradient variance constant across "
               "layers for activations symmetric and linear around 0 (Glorot & Bengio 2010)")
    return spec, why


def torch_default_choice(t: TensorSpec) -> tuple[dict, str]:
    """What PyTorch's module constructor (``reset_parameters``) draws for this tensor."""
    if t.role == "norm_weight":
        return schemes.normalize_spec("ones"), "PyTorch norms: weight = 1"
    if t.role == "norm_bias":
        return schemes.normalize_spec("zeros"), "PyTorch norms: bias = 0"
    if t.layer_type in ("rnn", "lstm", "gru"):
        h = t.torch_shape[0] // t.gates
        b = 1.0 / math.sqrt(h)
        return (schemes.normalize_spec({"name": "uniform", "low": -b, "high": b}),
                f"PyTorch {t.layer_type.upper()}: every parameter U[-1/sqrt(hidden_size), +1/sqrt(hidden_size)]")
    if t.layer_type == "embedding":
        return schemes.normalize_spec("normal"), "PyTorch Embedding: N(0, 1)"
    if t.layer_type == "attention":
        if t.role == "bias":
            return schemes.normalize_spec("zeros"), "PyTorch MultiheadAttention: in_proj_bias and out_proj.bias = 0"
        if t.kind == "out":
            return schemes.normalize_spec("uniform_fan_in"), "PyTorch MultiheadAttention: out_proj is a Linear (U[+-1/sqrt(fan_in)])"
        e = t.torch_shape[1]
        b = math.sqrt(6.0 / (e + 3 * e))
        return (schemes.normalize_spec({"name": "uniform", "low": -b, "high": b}),
                "PyTorch MultiheadAttention: xavier_uniform_ over the packed (3E, E) in_proj_weight")
    return (schemes.normalize_spec("uniform_fan_in"),
            "PyTorch Linear/Conv: kaiming_uniform_(a=sqrt(5)) = U[+-1/sqrt(fan_in)] for the weight, same bound for the bias")


def keras_default_choice(t: TensorSpec) -> tuple[dict, str]:
    if t.role == "norm_weight":
        return schemes.normalize_spec("ones"), "Keras norms: gamma = 1"
    if t.role in ("norm_bias", "bias"):
        if t.role == "bias" and t.layer_type == "lstm" and t.kind == "ih":
            return {"name": "lstm_forget_bias"}, "Keras LSTM (unit_forget_bias): forget-gate bias 1, the rest 0 (kept in bias_ih; bias_hh is 0)"
        return schemes.normalize_spec("zeros"), "Keras: bias zeros"
    if t.layer_type == "embedding":
        return schemes.normalize_spec({"name": "uniform", "low": -0.05, "high": 0.05}), "Keras Embedding: U[-0.05, 0.05]"
    if t.layer_type in ("rnn", "lstm", "gru") and t.kind == "hh":
        return schemes.normalize_spec("orthogonal"), "Keras recurrent layers: recurrent_kernel orthogonal"
    return schemes.normalize_spec("xavier_uniform"), "Keras: kernel glorot_uniform"


POLICIES = {"auto": auto_choice, "torch_default": torch_default_choice, "keras_default": keras_default_choice}


def choose(t: TensorSpec, request_scheme: dict, request_bias: dict | None, layer_scheme, layer_bias) -> tuple[dict, str, str]:
    """(scheme spec, chosen_by, reason) for one tensor."""
    if t.role in ("bias", "norm_bias"):
        if layer_bias is not None:
            spec, by = layer_bias, "layer"
        elif t.role == "norm_bias":
            return schemes.normalize_spec("zeros"), "default", "normalization bias starts at 0 (shift-free)"
        elif request_bias is not None:
            spec, by = request_bias, "request"
        elif request_scheme["name"] in ("torch_default", "keras_default"):
            spec, by = request_scheme, "request"
        else:
            return schemes.normalize_spec("zeros"), "default", "biases start at zero unless `bias` says otherwise"
        if spec["name"] == "auto":
            return schemes.normalize_spec("zeros"), by, "auto: biases start at zero"
    elif t.role == "norm_weight":
        if layer_scheme is None:
            return schemes.normalize_spec("ones"), "default", "normalization scale starts at 1 (identity transform)"
        spec, by = layer_scheme, "layer"
    else:
        spec, by = (layer_scheme, "layer") if layer_scheme is not None else (request_scheme, "request")
    if spec["name"] in POLICIES:
        chosen, why = POLICIES[spec["name"]](t)
        return chosen, spec["name"], why
    return spec, by, f"{spec['name']} as requested ({by})"


def recommended_variance(t: TensorSpec) -> tuple[float, str] | None:
    """The variance the rules of thumb recommend for this weight, or None where none applies."""
    if t.role not in ("weight", "raw") or t.layer_type == "embedding":
        return None
    a = t.activation
    if a.name in HE_ACTIVATIONS:
        slope = a.negative_slope if a.name == "leaky_relu" else 0.0
        return 2.0 / ((1 + slope * slope) * t.fan_in), "He"
    if a.name == "selu":
        return 1.0 / t.fan_in, "LeCun"
    return 2.0 / (t.fan_in + t.fan_out), "Xavier"


def warnings_for(t: TensorSpec, dist, variance: float) -> list[dict]:
    out = []
    weightlike = t.role in ("weight", "raw")
    if weightlike and isinstance(dist, Constant):
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
        sat = t.activation.name in ("tanh", "sigmoid", "softmax")
        what = "pushes tanh/sigmoid units into saturation where gradients vanish" if sat else "grows the signal at every layer (exploding activations and gradients)"
        out.append({"code": "exploding", "ratio": ratio, "message": (
            f"variance {variance:.3g} is {ratio:.3g}x above the {rule} variance {target:.3g} for activation "
            f"{t.activation.name}: it {what}")})
    return out
