"""The scheme registry: every named initialization, its parameters, formula and paper.

Modelled on JAX's ``jax/_src/nn/initializers.py``: one variance-scaling rule

    n   = fan_in | fan_out | (fan_in + fan_out) / 2 | sqrt(fan_in * fan_out)      (``mode``)
    Var = scale * gain^2 / n
    uniform:          U[-sqrt(3 Var), +sqrt(3 Var)]
    normal:           N(0, Var)                                   (never silently truncated)
    truncated_normal: N(0, Var / 0.8796^2) cut at +-2 of its sigmas, so the variance is Var

and the named schemes as data: Xavier/Glorot (scale 1, fan_avg), He/Kaiming (scale
2 / (1 + a^2), fan_in), LeCun (scale 1, fan_in), PyTorch's Linear default ``uniform_fan_in``
(scale 1/3, fan_in). The rest (constants, plain uniform/normal, PyTorch's truncated normal,
orthogonal, identity, dirac, sparse) are small functions. Aliases (xavier = glorot,
kaiming = he) live here once; this registry feeds request validation, ``GET /v1/schemes``
and the enums of ``openapi.yaml``.

``auto``, ``torch_default`` and ``keras_default`` are policies rather than distributions:
they pick a scheme per tensor (from the layer's activation, or from what the framework's
module constructor does); ``service.core.policies`` resolves them.
"""

from __future__ import annotations

import functools
import math

from .distributions import (
    TRUNCATION_STD_CORRECTION,
    Constant,
    Dirac,
    Distribution,
    ForgetGateBias,
    Identity,
    Normal,
    Orthogonal,
    Sparse,
    TruncatedNormal,
    Uniform,
)
from .errors import SpecError
from .gains import calculate_gain
from .gates import GATES
from .recipes import REGISTRY as RECIPES
from .scheme_entry import (
    DISTRIBUTIONS,
    MAX_MAGNITUDE,
    MODES,
    Context,
    Param,
    Resolved,
    Scheme,
)
from .structured import DeltaOrthogonal, ZerO

# --------------------------------------------------------------------------- variance scaling

def fan_for_mode(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    return math.sqrt(fan_in * fan_out)


def resolve_gain(gain, negative_slope: float | None) -> float:
    if isinstance(gain, str):
        return calculate_gain(gain, negative_slope)
    return float(gain)


def variance_scaling(scale: float, mode: str, distribution: str, ctx: Context, gain: float = 1.0) -> Resolved:
    """The one rule: Var = scale * gain^2 / n(mode); uniform, normal or (corrected) truncated normal."""
    if ctx.fan_in < 1 or ctx.fan_out < 1:
        raise SpecError("", f"fans must be >= 1 (fan_in={ctx.fan_in}, fan_out={ctx.fan_out})")
    n = fan_for_mode(mode, ctx.fan_in, ctx.fan_out)
    var = scale * gain * gain / n
    if var <= 0:
        raise SpecError("gain", "scale * gain^2 must be > 0")
    std = math.sqrt(var)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * var)
        dist: Distribution = Uniform(-limit, limit)
    elif distribution == "normal":
        dist = Normal(0.0, std)
    else:
        sigma = std / TRUNCATION_STD_CORRECTION
        dist = TruncatedNormal(0.0, sigma, -2.0 * sigma, 2.0 * sigma)
    return Resolved(dist, gain=math.sqrt(scale) * gain, target_variance=var, mode=mode, fan=n)


_MODE = Param("mode", "string", "fan_in", choices=MODES, doc="which fan n divides the variance")
_GAIN = Param("gain", "gain", 1.0, minimum=0.0, maximum=1e3, exclusive_minimum=True,
              doc="extra factor on the std: a number, or a nonlinearity name resolved with PyTorch's calculate_gain")
_TRUNC = Param("truncate", "boolean", False,
               doc="Keras/JAX truncation: N(0, Var/0.8796^2) cut at +-2 sigma, keeping the variance")
_SLOPE = Param("negative_slope", "number", 0.0, minimum=0.0, maximum=1e3,
               doc="negative slope a of the rectifier after this layer (leaky ReLU); scale = 2 / (1 + a^2)")


def _vs_preset(name, scale, mode, dist, *, aliases=(), summary, formula, latex, recommended, keras, torch, paper, he=False):
    normal = dist == "normal"
    params = [Param("mode", "string", mode, choices=MODES, doc=_MODE.doc), _GAIN]
    if he:
        params.append(_SLOPE)
    if normal:
        params.append(_TRUNC)

    def build(p: dict, ctx: Context) -> Resolved:
        s = scale / (1.0 + p["negative_slope"] ** 2) if he else scale
        d = "truncated_normal" if normal and p["truncate"] else dist
        return variance_scaling(s, p["mode"], d, ctx, resolve_gain(p["gain"], p.get("negative_slope")))

    return Scheme(name, summary, formula, latex, tuple(params), build, aliases=aliases, family="variance_scaling",
                  recommended=recommended, keras=keras, torch=torch, paper=paper,
                  preset={"scale": "2/(1+negative_slope^2)" if he else scale, "mode": mode, "distribution": dist})


_XAVIER_PAPER = "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks (AISTATS)"
_HE_PAPER = "He et al. 2015, Delving Deep into Rectifiers (ICCV), arXiv:1502.01852"
_LECUN_PAPER = "LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017, Self-Normalizing Neural Networks"
_XAVIER_WHY = ("keeps the variance of activations (forward) and gradients (backward) equal across layers for "
               "symmetric activations that are linear around 0 (tanh, sigmoid, softmax, linear)")
_HE_WHY = "ReLU zeroes half of its inputs, halving the variance; doubling the weights' variance keeps the signal's scale"

_PRESETS = [
    _vs_preset("xavier_uniform", 1.0, "fan_avg", "uniform", aliases=("glorot_uniform",),
               summary="Glorot/Xavier uniform: " + _XAVIER_WHY,
               formula="U[-b, b], b = gain * sqrt(6 / (fan_in + fan_out))",
               latex=r"\mathcal{U}\left[-g\sqrt{\tfrac{6}{n_{in}+n_{out}}},\ g\sqrt{\tfrac{6}{n_{in}+n_{out}}}\right]",
               recommended=("tanh", "sigmoid", "softmax", "linear"), keras="GlorotUniform",
               torch="torch.nn.init.xavier_uniform_", paper=_XAVIER_PAPER),
    _vs_preset("xavier_normal", 1.0, "fan_avg", "normal", aliases=("glorot_normal",),
               summary="Glorot/Xavier normal: " + _XAVIER_WHY + " (untruncated unless truncate: true)",
               formula="N(0, gain^2 * 2 / (fan_in + fan_out))",
               latex=r"\mathcal{N}\left(0,\ g^2\tfrac{2}{n_{in}+n_{out}}\right)",
               recommended=("tanh", "sigmoid", "softmax", "linear"), keras="GlorotNormal (truncated: use truncate: true)",
               torch="torch.nn.init.xavier_normal_", paper=_XAVIER_PAPER),
    _vs_preset("he_uniform", 2.0, "fan_in", "uniform", aliases=("kaiming_uniform",), he=True,
               summary="He/Kaiming uniform: " + _HE_WHY,
               formula="U[-b, b], b = gain * sqrt(6 / ((1 + a^2) * fan))",
               latex=r"\mathcal{U}\left[-g\sqrt{\tfrac{6}{(1+a^2)\,n}},\ g\sqrt{\tfrac{6}{(1+a^2)\,n}}\right]",
               recommended=("relu", "leaky_relu", "elu", "gelu", "silu"), keras="HeUniform",
               torch="torch.nn.init.kaiming_uniform_", paper=_HE_PAPER),
    _vs_preset("he_normal", 2.0, "fan_in", "normal", aliases=("kaiming_normal",), he=True,
               summary="He/Kaiming normal: " + _HE_WHY + " (untruncated unless truncate: true)",
               formula="N(0, gain^2 * 2 / ((1 + a^2) * fan))",
               latex=r"\mathcal{N}\left(0,\ g^2\tfrac{2}{(1+a^2)\,n}\right)",
               recommended=("relu", "leaky_relu", "elu", "gelu", "silu"), keras="HeNormal (truncated: use truncate: true)",
               torch="torch.nn.init.kaiming_normal_", paper=_HE_PAPER),
    _vs_preset("lecun_uniform", 1.0, "fan_in", "uniform",
               summary="LeCun uniform: unit variance of the pre-activation for unit-variance inputs",
               formula="U[-b, b], b = gain * sqrt(3 / fan_in)",
               latex=r"\mathcal{U}\left[-g\sqrt{\tfrac{3}{n_{in}}},\ g\sqrt{\tfrac{3}{n_{in}}}\right]",
               recommended=("selu", "linear"), keras="LecunUniform", torch=None, paper=_LECUN_PAPER),
    _vs_preset("lecun_normal", 1.0, "fan_in", "normal",
               summary="LeCun normal: unit variance of the pre-activation; the self-normalizing init for SELU",
               formula="N(0, gain^2 / fan_in)",
               latex=r"\mathcal{N}\left(0,\ \tfrac{g^2}{n_{in}}\right)",
               recommended=("selu",), keras="LecunNormal (truncated: use truncate: true)", torch=None, paper=_LECUN_PAPER),
    _vs_preset("uniform_fan_in", 1.0 / 3.0, "fan_in", "uniform",
               summary="U[+-1/sqrt(fan_in)]: recommended for sigmoid units in the early literature; PyTorch's default "
                       "for Linear/Conv weights and biases (kaiming_uniform_ with a = sqrt(5))",
               formula="U[-b, b], b = gain / sqrt(fan_in)",
               latex=r"\mathcal{U}\left[-\tfrac{g}{\sqrt{n_{in}}},\ \tfrac{g}{\sqrt{n_{in}}}\right]",
               recommended=("sigmoid",), keras=None, torch="torch.nn.init.kaiming_uniform_(a=math.sqrt(5))",
               paper="LeCun et al. 1998, Efficient BackProp"),
]


def _vs_general(p, ctx):
    dist = p["distribution"]
    if dist == "normal" and p["truncate"]:
        dist = "truncated_normal"
    return variance_scaling(p["scale"], p["mode"], dist, ctx, resolve_gain(p["gain"], None))


def _const(value):
    return lambda p, ctx: Resolved(Constant(value if value is not None else p["value"]), None, 0.0)


def _uniform(p, ctx):
    d = Uniform(p["low"], p["high"])
    return Resolved(d, None, d.variance())


def _normal(p, ctx):
    if p["truncate"]:
        sigma = p["std"] / TRUNCATION_STD_CORRECTION
        d: Distribution = TruncatedNormal(p["mean"], sigma, p["mean"] - 2 * sigma, p["mean"] + 2 * sigma)
    else:
        d = Normal(p["mean"], p["std"])
    return Resolved(d, None, p["std"] ** 2)


def _truncated(p, ctx):
    return Resolved(TruncatedNormal(p["mean"], p["std"], p["low"], p["high"]), None, p["std"] ** 2)


def _orthogonal(p, ctx):
    gain = resolve_gain(p["gain"], None)
    d = Orthogonal(gain, ctx.torch_shape)
    return Resolved(d, gain, d.variance())


def _identity(p, ctx):
    d = Identity(float(p["gain"]), ctx.torch_shape)
    return Resolved(d, float(p["gain"]), d.variance())


def _dirac(p, ctx):
    d = Dirac(p["groups"] or ctx.groups, ctx.torch_shape)
    return Resolved(d, None, d.variance())


def _zero_matrix(p, ctx):
    d = ZerO(ctx.groups, ctx.torch_shape)
    return Resolved(d, None, d.variance())


def _delta_orthogonal(p, ctx):
    if ctx.groups != 1:
        raise SpecError("scheme", f"delta_orthogonal applies to ungrouped convolutions (groups 1), got groups {ctx.groups}")
    gain = resolve_gain(p["gain"], None)
    d = DeltaOrthogonal(gain, ctx.torch_shape)
    return Resolved(d, gain, d.variance())


def _sparse(p, ctx):
    d = Sparse(p["sparsity"], p["std"], ctx.torch_shape)
    return Resolved(d, None, d.variance())


def _forget_bias(p, ctx):
    if len(ctx.torch_shape) != 1 or ctx.gates != GATES["lstm"]:
        raise SpecError("", "lstm_forget_bias applies to the biases of an lstm layer (4 gate blocks)")
    d = ForgetGateBias(ctx.gates, ctx.torch_shape[0])
    return Resolved(d, None, d.variance())


_NUM = dict(minimum=-MAX_MAGNITUDE, maximum=MAX_MAGNITUDE)
_STD = dict(minimum=0.0, maximum=MAX_MAGNITUDE, exclusive_minimum=True)

_OTHERS = [
    Scheme("variance_scaling", "The general rule every Xavier/He/LeCun preset is an instance of",
           "Var = scale * gain^2 / n(mode); uniform U[+-sqrt(3 Var)], normal N(0, Var), truncated_normal N(0, Var/0.8796^2) cut at +-2 sigma",
           r"\sigma^2 = \frac{s\,g^2}{n},\quad n \in \{n_{in}, n_{out}, \tfrac{n_{in}+n_{out}}{2}, \sqrt{n_{in}n_{out}}\}",
           (Param("scale", "number", 1.0, **_STD, doc="scale s of the variance"),
            Param("mode", "string", "fan_in", choices=MODES, doc=_MODE.doc),
            Param("distribution", "string", "truncated_normal", choices=DISTRIBUTIONS,
                  doc="uniform | normal (untruncated) | truncated_normal (corrected, Keras/JAX)"),
            _GAIN, _TRUNC), _vs_general, family="variance_scaling", keras="VarianceScaling",
           torch=None, paper="JAX jax.nn.initializers.variance_scaling; Keras VarianceScaling"),
    Scheme("zeros", "All zeros. For biases; as weights every unit of a layer computes the same thing and "
           "receives the same gradient, so the network cannot learn (symmetry)", "0", "0", (), _const(0.0),
           family="constant", keras="Zeros", torch="torch.nn.init.zeros_"),
    Scheme("ones", "All ones. For normalization scales; as weights the layer is symmetric (cannot learn)",
           "1", "1", (), _const(1.0), family="constant", keras="Ones", torch="torch.nn.init.ones_"),
    Scheme("constant", "Every value equal to `value`. As weights the layer is symmetric (cannot learn)",
           "value", r"c", (Param("value", "number", 0.0, **_NUM, doc="the constant"),), _const(None),
           family="constant", keras="Constant", torch="torch.nn.init.constant_"),
    Scheme("uniform", "U[low, high] (PyTorch's defaults 0, 1)", "U[low, high]", r"\mathcal{U}[a, b]",
           (Param("low", "number", 0.0, **_NUM, doc="lower bound"), Param("high", "number", 1.0, **_NUM, doc="upper bound")),
           _uniform, family="random", keras="RandomUniform", torch="torch.nn.init.uniform_"),
    Scheme("normal", "N(mean, std^2), untruncated (truncate: true gives Keras/JAX's corrected truncation)",
           "N(mean, std^2)", r"\mathcal{N}(\mu, \sigma^2)",
           (Param("mean", "number", 0.0, **_NUM, doc="mean"), Param("std", "number", 1.0, **_STD, doc="standard deviation"), _TRUNC),
           _normal, family="random", keras="RandomNormal", torch="torch.nn.init.normal_"),
    Scheme("truncated_normal", "N(mean, std^2) conditioned on [low, high] (absolute bounds, PyTorch's trunc_normal_ "
           "semantics; the actual variance is below std^2 and reported)",
           "N(mean, std^2) restricted to [low, high]", r"\mathcal{N}(\mu, \sigma^2)\,\big|\,[a, b]",
           (Param("mean", "number", 0.0, **_NUM, doc="mean of the parent normal"),
            Param("std", "number", 1.0, **_STD, doc="std of the parent normal"),
            Param("low", "number", -2.0, **_NUM, doc="absolute lower cut"),
            Param("high", "number", 2.0, **_NUM, doc="absolute upper cut")),
           _truncated, family="random", keras="TruncatedNormal (Keras cuts at 2 std, uncorrected)",
           torch="torch.nn.init.trunc_normal_"),
    Scheme("orthogonal", "A (semi-)orthogonal matrix times gain: preserves the norm of every input through a linear layer "
           "(exact dynamical isometry for deep linear nets)", "Q from QR(N(0,1)^(r x c)) with sign(diag R), times gain",
           r"g\,Q,\ Q^\top Q = I", (Param("gain", "gain", 1.0, minimum=0.0, maximum=1e3, exclusive_minimum=True,
                                          doc="multiplier, or a nonlinearity name"),),
           _orthogonal, family="structured", recommended=("linear", "tanh"), keras="Orthogonal",
           torch="torch.nn.init.orthogonal_", paper="Saxe, McClelland & Ganguli 2013, arXiv:1312.6120"),
    Scheme("identity", "The identity matrix times gain (2-D, non-square: ones on the main diagonal)", "gain * I",
           r"g\,I", (Param("gain", "number", 1.0, minimum=-1e3, maximum=1e3, doc="multiplier"),), _identity,
           family="structured", keras="Identity", torch="torch.nn.init.eye_",
           paper="Le, Jaitly & Hinton 2015, arXiv:1504.00941 (IRNN)"),
    Scheme("dirac", "A convolution that passes its input through (1 at the kernel centre k//2, per group)",
           "w[g*o/G + d, d, centre] = 1", r"\delta", (Param("groups", "integer", None, minimum=1, maximum=1 << 20,
                                                             doc="groups (default: the layer's)"),),
           _dirac, family="structured", keras=None, torch="torch.nn.init.dirac_",
           paper="Zagoruyko & Komodakis 2017, DiracNets, arXiv:1706.00388"),
    Scheme("zero_matrix", "ZerO's Algorithm 1 on one weight, deterministic (the seed changes nothing): the identity "
           "when out == in, the partial identity (the first out inputs) when out < in, the first out x in block of "
           "a 2^m Hadamard matrix times 2^(-(m-1)/2), m = ceil(log2 out), when out > in; on a convolution, that "
           "matrix at the kernel's centre ((k-1)//2) per group, zeros elsewhere. The `zero` recipe adds the "
           "residual rule", "I | I* | 2^(-(m-1)/2) I* H_m I*, m = ceil(log2 out)",
           r"I \mid I^* \mid 2^{-(m-1)/2}\, I^* H_m I^*", (), _zero_matrix, family="structured",
           paper="Zhao, Schäfer & Anandkumar 2022, ZerO Initialization: Initializing Neural Networks with only Zeros "
                 "and Ones (TMLR), arXiv:2110.12661, Algorithm 1"),
    Scheme("delta_orthogonal", "A convolution kernel that is an orthogonal matrix times gain at its spatial centre "
           "((k-1)//2, JAX's) and zero elsewhere: dynamical isometry for very deep CNNs (needs in_channels <= "
           "out_channels, rank 3 to 5, groups 1; JAX's delta_orthogonal)", "w[:, :, centre] = gain * Q, Q^T Q = I; 0 elsewhere",
           r"W_{:,:,c} = g\,Q,\ Q^\top Q = I", (Param("gain", "gain", 1.0, minimum=0.0, maximum=1e3, exclusive_minimum=True,
                                                        doc="multiplier (JAX's scale), or a nonlinearity name"),),
           _delta_orthogonal, family="structured", recommended=("linear", "tanh"),
           paper="Xiao et al. 2018, Dynamical Isometry and a Mean Field Theory of CNNs (ICML), arXiv:1806.05393"),
    Scheme("sparse", "N(0, std^2) with ceil(sparsity * rows) zeros in every column (2-D)",
           "N(0, std^2), fraction `sparsity` of each column zero", r"\mathcal{N}(0,\sigma^2)\ \text{sparse}",
           (Param("sparsity", "number", None, minimum=0.0, maximum=1.0, exclusive_maximum=True, required=True,
                  doc="fraction of each column set to zero"),
            Param("std", "number", 0.01, **_STD, doc="std of the non-zero values")),
           _sparse, family="structured", torch="torch.nn.init.sparse_",
           paper="Martens 2010, Deep learning via Hessian-free optimization (ICML)"),
    Scheme("lstm_forget_bias", "An LSTM bias with its forget-gate block at 1 and the other three gates at 0 (Keras's "
           "unit_forget_bias): the cell starts by remembering", "b[H:2H] = 1, else 0 (gates i, f, g, o)",
           r"b_f = 1,\ b_{i,g,o} = 0", (), _forget_bias, family="structured", keras="LSTM(unit_forget_bias=True)",
           paper="Jozefowicz, Zaremba & Sutskever 2015, An Empirical Exploration of Recurrent Network Architectures (ICML)"),
]

_POLICIES = [
    Scheme("auto", "Per layer from its activation, the rules of thumb: tanh -> Xavier uniform with gain 5/3; "
           "sigmoid, softmax, linear -> Xavier uniform; relu, leaky_relu, elu, gelu, silu -> He normal (with the leaky slope); selu -> LeCun normal",
           "xavier_uniform (gain 5/3 for tanh) | he_normal | lecun_normal by activation", r"\text{by activation}", (), None,
           family="policy", recommended=(), paper=f"{_XAVIER_PAPER}; {_HE_PAPER}"),
    Scheme("torch_default", "What PyTorch's module constructors do: Linear/Conv weight and bias U[+-1/sqrt(fan_in)]; "
           "recurrent U[+-1/sqrt(hidden)]; Embedding N(0, 1); attention in-projections Xavier uniform over (3E, E), "
           "zero biases; norms 1 and 0", "module reset_parameters()", r"\text{PyTorch defaults}", (), None,
           family="policy", torch="reset_parameters()"),
    Scheme("hf_default", "What transformers' PreTrainedModel._init_weights does (transformers 5.23.0): Linear, Conv "
           "and Embedding weights N(0, initializer_range^2), biases 0, norms 1 and 0, an embedding's padding row 0; "
           "LSTM weights xavier_uniform; with an hf_config, the model family's own rules too (GPT-2's residual "
           "projections at initializer_range / sqrt(2 n_layer), Gemma's RMSNorm at 0)",
           "N(0, initializer_range^2) | 0 | 1 by module", r"\mathcal{N}(0, r^2)\ \text{by module}",
           (Param("initializer_range", "number", None, minimum=0.0, maximum=1e3, exclusive_minimum=True,
                  doc="std of the weights (default: the hf_config's `initializer_range or 0.02`, else 0.02)"),),
           None, family="policy", paper="transformers PreTrainedModel._init_weights"),
    Scheme("keras_default", "What Keras layers do: Dense/Conv kernel glorot_uniform, bias zeros; recurrent kernel "
           "glorot_uniform, recurrent kernel orthogonal, LSTM forget-gate bias 1; Embedding U[+-0.05]; norms 1 and 0",
           "layer defaults", r"\text{Keras defaults}", (), None, family="policy", keras="layer defaults"),
]


SCHEMES: dict[str, Scheme] = {s.name: s for s in _PRESETS + _OTHERS + _POLICIES + [r.scheme for r in RECIPES.values()]}
ALIASES: dict[str, str] = {a: s.name for s in SCHEMES.values() for a in s.aliases}
#: Every accepted name, canonical and alias: the enum of ``scheme.name`` in the API.
ALL_NAMES: tuple[str, ...] = tuple(sorted(set(SCHEMES) | set(ALIASES)))
#: The schemes that choose per tensor (resolved by ``core.policies``, never by ``resolve``).
POLICY_NAMES = ("auto", "torch_default", "keras_default", "hf_default", *RECIPES)


def canonical_name(name: str) -> str:
    if name in SCHEMES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    raise SpecError("name", f"unknown scheme {name!r}; GET /v1/schemes or `weightinit schemes` lists them")


def get(name: str) -> Scheme:
    return SCHEMES[canonical_name(name)]


def normalize_spec(spec) -> dict:
    """A scheme given as a name or as ``{"name": ..., params}`` -> ``{"name": canonical, **checked params}``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise SpecError("", "a scheme is a registry name or an object with a string 'name'")
    scheme = get(spec["name"])
    params = {k: v for k, v in spec.items() if k != "name"}
    return {"name": scheme.name, **scheme.check_params(params)}


def spec(name: str, **params) -> dict:
    """The normalized spec of a registry scheme with these parameters, for the engine's own choices
    (policies, framework defaults). Shared and memoized: the same choice is made for every tensor of
    every request, and normalizing costs more than anything else a small plan does. Never mutated."""
    # repr in the key: 0.0 == -0.0 (and 1 == 1.0 == True) as dict keys, but not as normalized values
    return _normalized(name, tuple((k, v, repr(v)) for k, v in sorted(params.items())))


@functools.lru_cache(maxsize=1024)
def _normalized(name: str, params: tuple) -> dict:
    return normalize_spec({"name": name, **{k: v for k, v, _ in params}})


def resolve(spec: dict, ctx: Context) -> Resolved:
    """Apply a normalized, non-policy scheme spec to one tensor."""
    scheme = SCHEMES[spec["name"]]
    params = {k: v for k, v in spec.items() if k != "name"}
    return scheme.build(params, ctx)
