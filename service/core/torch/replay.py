"""``rng: "torch"``: a whole plan replayed on PyTorch's CPU random stream.

What it reproduces::

    torch.manual_seed(seed)
    model = [<layer 0 module>, <layer 1 module>, ...]     # constructors draw, in order
    for layer in model:                                   # unless scheme is torch_default
        for p in layer's parameters, in named_parameters() order:
            torch.nn.init.<scheme>_(p)                    # the call each tensor reports

Each layer type (``core.layers``) says which ``torch.nn`` module it is (``torch_construct``), which
of the module's parameters each of its tensors is (``torch_values``) and their order
(``torch_init_order``); a raw ``tensor`` is ``nn.Parameter(torch.empty(shape))``: no draws. Values
are float32 (PyTorch's default dtype) and then cast to the request's dtype, as ``model.to(dtype)``
would. The stream is sequential: a selected subset is computed by replaying everything before it
and discarding it, so cost grows with the position of the last selected tensor.

That order is ``default_program``'s; a recipe whose reference model draws otherwise gives its own
program (``core.torch.program``: constructions, extra modules, init calls whose values are kept or
overwritten later), as ``nanogpt`` gives nanoGPT's.
"""

from __future__ import annotations

import math

import numpy as np

from .. import layers, recipes
from ..gates import LSTM_FORGET
from ..schemes import resolve_gain
from ..structured import at_centre
from . import init, modules, program
from .generator import TorchCPUGenerator


def torch_call(t) -> tuple[str, dict, str]:
    """(``core.torch.init`` function, kwargs, the PyTorch call it replays) for one TensorPlan.

    The function is ``"construct"`` when the constructor's values are kept (torch_default)."""
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
    if name == "delta_orthogonal":
        return "delta_orthogonal", {"gain": gain}, \
            f"q = torch.nn.init.orthogonal_(torch.empty(w.shape[:2]), gain={gain!r}); w.zero_(); w[:, :, centre] = q"
    if name == "zero_matrix":  # deterministic: no draw from the stream
        return "zero_matrix", {}, "ZerO Algorithm 1 (identity, partial identity or Hadamard; no random draw)"
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
    """Whether the values are bit-identical to PyTorch's (AVX2 kernels): all but orthogonal_ and the
    delta-orthogonal centre it draws (float32 QR in torch vs float64 QR here; see
    init.ORTHOGONAL_BOUND_FACTOR)."""
    method, _, _ = torch_call(t)
    return method not in init.QR_METHODS


def _draw(gen: TorchCPUGenerator, method: str, kw: dict, t) -> tuple[np.ndarray, bool]:
    """``method`` (a ``torch_call`` name) with ``kw`` on tensor ``t``'s PyTorch view."""
    shape = t.spec.torch_shape
    if method == "forget_bias":
        v = np.zeros(shape, np.float32)
        h = shape[0] // t.spec.gates
        v[LSTM_FORGET * h:(LSTM_FORGET + 1) * h] = 1
        return v, True
    if method == "eye_":
        return (init.eye_(gen, shape) * np.float32(kw["gain"])).astype(np.float32), True
    if method == "uniform_":
        return gen.uniform_(shape, kw["low"], kw["high"]), True
    if method == "zero_matrix":
        return t.distribution.draw(shape, None, None).astype(np.float32), True
    if method == "delta_orthogonal":
        q, exact = init.orthogonal_(gen, shape[:2], kw["gain"])
        return at_centre(shape, q).astype(np.float32), exact
    if method in ("normal_", "trunc_normal_"):  # the primitives are the generator's own
        return getattr(gen, method)(shape, **kw)
    out = getattr(init, method)(gen, shape, **kw)
    return out if isinstance(out, tuple) else (out, True)


def in_init_order(plan_layers: list, by_layer: dict) -> list[tuple]:
    """[(layer, its tensors in named_parameters() order)], in document order: what programs walk."""
    return [(layer, layers.get(layer.type).torch_init_order(by_layer.get(layer.index, []))) for layer in plan_layers]


def default_program(spec: dict, ordered: list[tuple]) -> list:
    """Every layer's module constructed, in order; then, layer by layer, each tensor's own call (none for
    ``torch_default``: construction only)."""
    steps: list = [program.Construct(layer) for layer, _ in ordered]
    return steps + [program.Draw(t) for _, ts in ordered for t in ts if t.chosen_by != "torch_default"]


class TorchReplay:
    """Lazily replays a plan once; ``values(t)`` -> (float32 array in the PyTorch view, exact).

    The program is the request scheme's recipe's (``Recipe.torch_program``) when it has one, else
    ``default_program``; it is built with the plan, so that a recipe's SpecError is the plan's."""

    def __init__(self, plan_layers: list, tensors: list, selected: list, seed: int, scheme: dict):
        self.selected = {t.name for t in selected}
        self.seed = seed
        self.by_layer: dict[int, list] = {}
        for t in tensors:
            self.by_layer.setdefault(t.spec.layer_index, []).append(t)
        recipe = recipes.REGISTRY.get(scheme["name"])
        own = recipe is not None and recipe.torch_program is not None
        self.steps = (recipe.torch_program if own else default_program)(scheme, in_init_order(plan_layers, self.by_layer))
        self.end = max((i for i, s in enumerate(self.steps) if self._sets_selected(s)), default=-1) + 1
        #: A recipe's program: the values its steps up to the last selected one draw (a tied or re-drawn
        #: tensor counts each time), which ``max_torch_elements`` bounds; None for the default program,
        #: whose bound counts the tensors up to the last selected one (``service.limits``).
        self.recipe_values = sum(self._size(s) for s in self.steps[:self.end]) if own else None
        self._cache: dict | None = None

    def _size(self, step) -> int:
        if isinstance(step, program.Construct):
            return sum(t.size for t in self.by_layer.get(step.layer.index, []))
        return step.size if isinstance(step, program.Module) else step.tensor.size

    def _sets_selected(self, step) -> bool:
        """Whether the step writes a value the request selected (the steps after the last one that does
        are not run: cost grows with the position of the last selected tensor)."""
        if isinstance(step, program.Construct):
            return any(t.name in self.selected for t in self.by_layer.get(step.layer.index, []))
        return isinstance(step, program.Draw) and step.keep and step.tensor.name in self.selected

    def _run(self) -> dict:
        gen = TorchCPUGenerator(self.seed)
        values: dict[str, tuple] = {}
        for step in self.steps[:self.end]:
            if isinstance(step, program.Construct):
                layer = step.layer
                kind = layers.get(layer.type)
                ts = self.by_layer.get(layer.index, [])
                with_bias = any(t.spec.role in ("bias", "norm_bias") for t in ts)
                values.update(kind.torch_values(layer, kind.torch_construct(gen, layer, with_bias), ts))
            elif isinstance(step, program.Module):
                modules.MODULES[step.name](gen, **dict(step.kwargs))  # drawn, not kept
            else:
                t = step.tensor
                method, kw = (step.method, dict(step.kwargs)) if step.method else torch_call(t)[:2]
                drawn = _draw(gen, method, kw, t)
                if step.keep:
                    values[t.name] = drawn
        return values

    def values(self, t) -> tuple[np.ndarray, bool]:
        if self._cache is None:
            self._cache = self._run()
        return self._cache[t.name]
