"""``rng: "torch"``: a whole architecture replayed on PyTorch's CPU random stream.

What it reproduces (see ``torch_rng`` for the kernel arithmetic)::

    torch.manual_seed(seed)
    model = [<layer 0 module>, <layer 1 module>, ...]     # constructors draw, in order
    for layer in model:                                   # unless scheme is torch_default
        for p in layer's parameters, in named_parameters() order:
            torch.nn.init.<scheme>_(p)                    # the call each tensor reports

Mapping of weightinit tensors to PyTorch parameters: ``dense``/``conv*`` -> ``nn.Linear`` /
``nn.Conv*d`` / ``nn.ConvTranspose*d`` (``weight``, ``bias``); ``rnn``/``lstm``/``gru`` ->
``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``; ``embedding`` ->
``nn.Embedding``; norms -> ``nn.BatchNorm*d`` / ``nn.LayerNorm`` (no draws); ``attention`` ->
``nn.MultiheadAttention(embed_dim, num_heads, bias)``, whose packed ``in_proj_weight`` rows
``[0:E], [E:2E], [2E:3E]`` are ``q_proj``/``k_proj``/``v_proj.weight`` (likewise
``in_proj_bias``) and whose ``out_proj`` is ``out_proj``; ``tensor`` -> an
``nn.Parameter(torch.empty(shape))`` (no draws). After construction, a scheme is applied to
each tensor in the module's ``named_parameters()`` order (for attention: q, k, v weights,
then q, k, v biases, then out_proj weight and bias), each slice on its own.

Values are float32 (PyTorch's default dtype) and then cast to the request's dtype, as
``model.to(dtype)`` would. The stream is sequential: a selected subset is computed by
replaying everything before it and discarding it, so cost grows with the position of the
last selected tensor, not with the selection.
"""

from __future__ import annotations

import math

import numpy as np

from .layers import CONV_DIMS
from .schemes import resolve_gain
from .torch_rng import TorchCPUGenerator, construct_module

# Which torch.nn.init function reproduces a weightinit scheme with given parameters.


def torch_call(t) -> tuple[str, dict, str]:
    """(method of TorchCPUGenerator, kwargs, the PyTorch call it replays) for one TensorPlan.

    ``method`` is ``"construct"`` when the constructor's values are kept (torch_default)."""
    spec, dist = t.scheme, t.distribution
    name = spec["name"]
    if t.chosen_by == "torch_default":
        return "construct", {}, "module constructor (reset_parameters)"
    g = spec.get("gain", 1.0)
    gain = resolve_gain(g, spec.get("negative_slope")) if g is not None else 1.0
    truncate = spec.get("truncate", False)
    mode = spec.get("mode")
    if name == "xavier_uniform" and mode == "fan_avg":
        return "xavier_uniform_", {"gain": gain}, f"torch.nn.init.xavier_uniform_(w, gain={gain!r})"
    if name == "xavier_normal" and mode == "fan_avg" and not truncate:
        return "xavier_normal_", {"gain": gain}, f"torch.nn.init.xavier_normal_(w, gain={gain!r})"
    if name in ("he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "uniform_fan_in") \
            and mode in ("fan_in", "fan_out") and g == 1.0 and not truncate:
        a, nl = {"he_uniform": (spec.get("negative_slope", 0.0), "leaky_relu"),
                 "he_normal": (spec.get("negative_slope", 0.0), "leaky_relu"),
                 "lecun_uniform": (0.0, "linear"), "lecun_normal": (0.0, "linear"),
                 "uniform_fan_in": (math.sqrt(5.0), "leaky_relu")}[name]
        fn = "kaiming_normal_" if name.endswith("normal") else "kaiming_uniform_"
        return fn, {"a": a, "mode": mode, "nonlinearity": nl}, \
            f"torch.nn.init.{fn}(w, a={a!r}, mode={mode!r}, nonlinearity={nl!r})"
    if name == "orthogonal":
        return "orthogonal_", {"gain": gain}, f"torch.nn.init.orthogonal_(w, gain={gain!r})"
    if name == "sparse":
        return "sparse_", {"sparsity": spec["sparsity"], "std": spec["std"]}, \
            f"torch.nn.init.sparse_(w, sparsity={spec['sparsity']!r}, std={spec['std']!r})"
    if name == "dirac":
        groups = dist.groups
        return "dirac_", {"groups": groups}, f"torch.nn.init.dirac_(w, groups={groups})"
    if name == "identity":
        return "eye_", {"gain": spec["gain"]}, "torch.nn.init.eye_(w)" + (f" * {spec['gain']!r}" if spec["gain"] != 1 else "")
    if dist.name == "constant":
        return "constant_", {"val": dist.value}, f"torch.nn.init.constant_(w, {dist.value!r})"
    if dist.name == "lstm_forget_bias":
        return "forget_bias", {}, "torch.nn.init.zeros_(b); b[H:2H] = 1"
    # Everything else is the primitive with weightinit's own parameters.
    if dist.name == "uniform":
        return "uniform_", {"low": dist.low, "high": dist.high}, f"torch.nn.init.uniform_(w, {dist.low!r}, {dist.high!r})"
    if dist.name == "normal":
        return "normal_", {"mean": dist.mean_, "std": dist.std}, f"torch.nn.init.normal_(w, {dist.mean_!r}, {dist.std!r})"
    if dist.name == "truncated_normal":
        kw = {"mean": dist.mean_, "std": dist.std, "a": dist.low, "b": dist.high}
        return "trunc_normal_", kw, f"torch.nn.init.trunc_normal_(w, {dist.mean_!r}, {dist.std!r}, {dist.low!r}, {dist.high!r})"
    raise AssertionError(f"no torch replay for {name}/{dist.name}")  # every registry scheme is covered above


def predicted_exact(t) -> bool:
    """Whether the values are bit-identical to PyTorch's (AVX2 kernels): all but orthogonal_
    (float32 QR in torch vs float64 QR here; see torch_rng.ORTHOGONAL_BOUND_FACTOR)."""
    method, _, _ = torch_call(t)
    return method != "orthogonal_"


def _apply(gen: TorchCPUGenerator, t, shape) -> tuple[np.ndarray, bool]:
    method, kw, _ = torch_call(t)
    if method in ("constant_",):
        return gen.constant_(shape, kw["val"]), True
    if method == "forget_bias":
        v = np.zeros(shape, np.float32)
        h = shape[0] // 4
        v[h:2 * h] = 1
        return v, True
    if method == "eye_":
        return (gen.eye_(shape) * np.float32(kw["gain"])).astype(np.float32), True
    if method == "dirac_":
        return gen.dirac_(shape, **kw), True
    if method == "uniform_":
        return gen.uniform_(shape, kw["low"], kw["high"]), True
    out = getattr(gen, method)(shape, **kw)
    return out if isinstance(out, tuple) else (out, True)


def _module_kwargs(layer, with_bias: bool) -> tuple[str, dict]:
    f = layer.fields
    if layer.type == "dense":
        return "dense", {"in_features": f["in_features"], "out_features": f["out_features"], "bias": with_bias}
    if layer.type in CONV_DIMS:
        return layer.type, {"in_channels": f["in_channels"], "out_channels": f["out_channels"],
                            "kernel_size": f["kernel_size"], "groups": f.get("groups", 1), "bias": with_bias}
    if layer.type == "embedding":
        return "embedding", {"num_embeddings": f["num_embeddings"], "embedding_dim": f["embedding_dim"]}
    if layer.type in ("rnn", "lstm", "gru"):
        return layer.type, {"input_size": f["input_size"], "hidden_size": f["hidden_size"], "bias": with_bias}
    if layer.type == "batchnorm":
        return "batchnorm", {"num_features": f["num_features"]}
    if layer.type == "layernorm":
        return "layernorm", {"normalized_shape": f["normalized_shape"], "bias": with_bias}
    if layer.type == "attention":
        return "attention", {"embed_dim": f["embed_dim"], "num_heads": f["num_heads"], "bias": with_bias}
    return "tensor", {}


def _constructed(layer, params: list, tensors: list) -> dict:
    """weightinit tensor name -> (float32 array in the PyTorch view, exact) from a constructor's output."""
    by_torch = {name: (arr, exact) for name, arr, exact in params}
    out = {}
    for t in tensors:
        suffix = t.name[len(layer.name) + 1:] if t.name != layer.name else ""
        if layer.type in ("rnn", "lstm", "gru"):
            out[t.name] = by_torch[f"{suffix}_l0"]
        elif layer.type == "attention":
            proj, kind = suffix.split(".")
            if proj == "out_proj":
                out[t.name] = by_torch[f"out_proj.{kind}"]
            else:
                e = t.spec.torch_shape[0]
                i = "qkv".index(proj[0])
                packed, exact = by_torch[f"in_proj_{kind}"]
                out[t.name] = (packed[i * e:(i + 1) * e], exact)
        elif layer.type == "tensor":
            out[t.name] = (np.zeros(t.spec.torch_shape, np.float32), True)  # torch.empty: overwritten below
        else:
            out[t.name] = by_torch[suffix]
    return out


def _init_order(layer, tensors: list) -> list:
    """A module's parameters in named_parameters() order (attention: packed q, k, v first)."""
    if layer.type != "attention":
        return tensors
    key = {"q_proj.weight": 0, "k_proj.weight": 1, "v_proj.weight": 2, "q_proj.bias": 3, "k_proj.bias": 4,
           "v_proj.bias": 5, "out_proj.weight": 6, "out_proj.bias": 7}
    return sorted(tensors, key=lambda t: key[t.name[len(layer.name) + 1:]])


class TorchReplay:
    """Lazily replays a plan once; ``values(t)`` -> (float32 array in the PyTorch view, exact)."""

    def __init__(self, plan_layers: list, tensors: list, selected: list, seed: int):
        self.layers = plan_layers
        self.tensors = tensors
        self.selected = {t.name for t in selected}
        self.seed = seed
        self._cache: dict | None = None

    def _run(self) -> dict:
        gen = TorchCPUGenerator(self.seed)
        last = max(t.position for t in self.tensors if t.name in self.selected)
        by_layer: dict[int, list] = {}
        for t in self.tensors:
            by_layer.setdefault(t.spec.layer_index, []).append(t)
        values: dict[str, tuple] = {}
        # 1. construction, every layer in order (it fixes the stream for what follows)
        for layer in self.layers:
            ts = by_layer.get(layer.index, [])
            with_bias = any(t.spec.role in ("bias", "norm_bias") for t in ts)
            kind, kw = _module_kwargs(layer, with_bias)
            params = [] if kind == "tensor" else construct_module(gen, kind, **kw)
            values.update(_constructed(layer, params, ts))
            if all(t.chosen_by == "torch_default" for t in self.tensors) and ts and ts[-1].position >= last:
                return values  # construction only, and nothing selected lies further on
        # 2. the requested scheme, layer by layer, in named_parameters() order
        for layer in self.layers:
            for t in _init_order(layer, by_layer.get(layer.index, [])):
                if t.chosen_by == "torch_default":
                    continue
                values[t.name] = _apply(gen, t, t.spec.torch_shape)
        return values

    def values(self, t) -> tuple[np.ndarray, bool]:
        if self._cache is None:
            self._cache = self._run()
        return self._cache[t.name]
