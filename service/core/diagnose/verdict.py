"""The verdict of a scheme, its explanation in words, and its warnings (docs/diagnose.md).

Each layer gets ``problems`` (symmetric, saturated, vanishing, exploding); the scheme's verdict is
the most severe one found in any layer, with the first layer that shows it and the rule of thumb
that would fix it. A residual network is judged by its stream too: the layers inside its branches may
start small (that is what GPT-2, Fixup and SkipInit do), but a stream whose RMS grows with depth is
``growing``.
"""

from __future__ import annotations

import math

from .. import policies
from ..activations import Activation
from ..distributions import Constant

VERDICTS = ("healthy", "vanishing", "exploding", "saturated", "symmetric", "growing")
BAND = 10.0
SATURATION_LIMIT = 0.25
DEAD_WARN = 0.5
SATURATION_WARN = 0.15
#: A residual stream whose RMS after the last branch is more than this many times the input's is growing:
#: the branches have added at least 3x the input's variance, and each later block moves the stream by an
#: ever smaller fraction of its size (docs/diagnose.md).
STREAM_GROWTH = 2.0


def _rule(act: Activation) -> str:
    """The rule of thumb for ``act`` in words, as ``auto`` applies it (``policies.rule_of_thumb``)."""
    return f"{policies.rule_of_thumb(act)[1]}, the rule for {_for(act.name)}"


def _hidden_activation(stages) -> Activation:
    """The activation most hidden layers use (the last layer's if there is only one)."""
    acts = [st.activation for st in (stages[:-1] or stages)]
    return max(dict.fromkeys(acts), key=acts.count)


def _for(act_name: str) -> str:
    return "linear layers" if act_name == "linear" else act_name


def _times(r: float) -> str:
    if r == 0:
        return "infinitely"
    x = r if r >= 1 else 1 / r
    return f"{x:.3g}" if x < 1e4 else f"{x:.1e}"


def verdict(stages, layers: list, weight_tensors: list, stream: list | None = None):
    """(verdict, first_bad_layer, explanation) from the per-layer problems, and for a residual network the
    stream after each branch (``_stream_verdict``)."""
    def first(problem):
        return next((i for i, lay in enumerate(layers) if problem in lay["problems"]), None)

    hidden = _hidden_activation(stages)
    act = hidden.name
    fix = _rule(hidden)
    i = first("symmetric")
    if i is not None:
        name = layers[i]["name"]
        dist = weight_tensors[i].distribution
        if isinstance(dist, Constant) and dist.value == 0:
            why = (f"All weights of layer {name} are zero, so its units all compute the same output and receive the same "
                   f"gradient: the model does not train (start from small random weights: {fix}).")
        elif isinstance(dist, Constant):
            why = (f"All weights of layer {name} are the same number ({dist.value:g}), so all its units compute the same "
                   f"output and get the same update: they stay identical and the layer works like a single unit "
                   f"(break the symmetry with random weights: {fix}).")
        else:
            why = (f"All units of layer {name} compute exactly the same output, so they get the same update and can "
                   f"never become different (break the symmetry with random weights: {fix}).")
        return "symmetric", name, why
    i = first("saturated")
    if i is not None:
        lay = layers[i]
        a = stages[i].activation.name
        where = "+1 or -1" if a == "tanh" else "0 or 1"
        scale = _scale_vs_rule(weight_tensors)
        how = f" (variance {_times(scale[0])}x the {scale[1]} variance)" if scale and scale[0] > 1.1 else ""
        why = (f"The weights are too large for {a}{how}: {100 * lay['saturated_fraction']:.0f}% of the outputs of layer "
               f"{lay['name']} are stuck near {where}, where the curve is flat, so almost no gradient gets through and "
               f"learning stalls (use {_rule(stages[i].activation)}).")
        return "saturated", lay["name"], why

    inside = branch_layers(stages)

    def extreme(key, pick):  # a branch's inside may be small (its stream is judged), never large
        vals = [(lay[key], lay["name"]) for lay, st in zip(layers, stages)
                if lay[key] is not None and (pick is max or st.index not in inside)]
        return pick(vals, key=lambda v: v[0]) if vals else (1.0, None)

    (fmin, fmin_at), (fmax, fmax_at) = extreme("forward_ratio", min), extreme("forward_ratio", max)
    (bmin, bmin_at), (bmax, bmax_at) = extreme("backward_ratio", min), extreme("backward_ratio", max)
    overflow = next((lay["name"] for lay in layers if lay["overflow"]), None)
    dev_v = -math.log10(min(fmin, bmin)) if min(fmin, bmin) > 0 else math.inf
    dev_e = math.inf if overflow else math.log10(max(fmax, bmax))
    iv, ie = first("vanishing"), first("exploding")
    scale = _scale_vs_rule(weight_tensors)
    if iv is not None and (ie is None or dev_v >= dev_e):
        parts = []
        if fmin < 1 / BAND:
            parts.append(f"the signal fades layer after layer ({_times(fmin)}x weaker than the input at layer {fmin_at})")
        if bmin < 1 / BAND:
            parts.append(f"the gradients fade on their way back ({_times(bmin)}x smaller at layer {bmin_at} than at "
                         f"the last layer)")
        what = " and ".join(parts)
        if scale is not None and scale[0] < 0.9:
            tail = (" and prefer tanh or ReLU in a deep network: sigmoid's slope is at most 1/4, so gradients shrink "
                    "even with well-scaled weights" if act == "sigmoid" else "")
            why = (f"The weights are too small for {_for(act)} (variance {scale[0]:.2g}x the {scale[1]} variance): {what}, so "
                   f"the early layers barely learn (use {fix}{tail}).")
        elif act == "sigmoid":
            why = (f"Even with well-scaled weights, sigmoid's slope is at most 1/4, so {what}; the early layers barely "
                   f"learn (prefer tanh with Xavier or ReLU with He in a deep network).")
        else:
            why = f"Vanishing: {what}, so the early layers barely learn (use {fix})."
        return "vanishing", layers[iv]["name"], why
    if ie is not None:
        parts = []
        if overflow:
            parts.append(f"the signal overflows even 64-bit floats at layer {overflow}")
        elif fmax > BAND:
            parts.append(f"the signal grows layer after layer ({_times(fmax)}x stronger than the input at layer {fmax_at})")
        if not overflow and bmax > BAND:
            parts.append(f"the gradients grow on their way back ({_times(bmax)}x larger at layer {bmax_at} than at the "
                         f"last layer)")
        what = " and ".join(parts)
        if scale is not None and scale[0] > 1.1:
            why = (f"The weights are too large for {_for(act)} (variance {scale[0]:.2g}x the {scale[1]} variance): {what}, so "
                   f"training steps blow up (use {fix}).")
        else:
            why = f"Exploding: {what}, so training steps blow up (use {fix})."
        return "exploding", layers[ie]["name"], why
    if stream:
        return _stream_verdict(stream)
    n = len(layers)
    why = (f"Activations and gradients keep their scale through all {n} layer{'s' if n > 1 else ''} (signal "
           f"{fmin:.2g}x to {fmax:.2g}x the input's, gradients {bmin:.2g}x to {bmax:.2g}x the last layer's), so every "
           f"layer can learn; {policies.rule_of_thumb(hidden)[1]} is the rule of thumb for {_for(act)}.")
    return "healthy", None, why


def _stream_verdict(stream: list):
    """growing or healthy, from the residual stream after each branch (``run._stream``)."""
    n = len(stream)
    ratios = [b["ratio"] if b["ratio"] is not None else math.inf for b in stream]  # None: beyond float64
    grad = stream[0]["gradient_ratio"]
    back = f"; the gradient reaching the first branch is {grad:.2g}x the output's" if grad is not None else ""
    marks = sorted({max(0, n * q // 4 - 1) for q in (1, 2, 3, 4)})
    path = ", ".join(f"{ratios[k]:.3g}x after branch {k + 1}" for k in marks) + f" of {n}"
    if ratios[-1] > STREAM_GROWTH:
        at = next(b for b in stream if b["ratio"] > STREAM_GROWTH)
        why = (f"The residual stream grows with depth: its RMS, 1x at the input, is {path}. Each branch adds "
               f"the variance of its output to the stream and nothing scales the sum back, so every later block moves "
               f"the stream by a smaller fraction of its size and contributes less{back} (scale each branch's output "
               f"projection down with depth: gpt2's std / sqrt(2 n_layer), DeepNorm's beta, or Fixup's zero start).")
        return "growing", at["last_layer"], why
    why = (f"The residual stream keeps its scale through all {n} branch{'es' if n > 1 else ''} (RMS {min(ratios):.3g}x "
           f"to {max(ratios):.3g}x the input's: {path}){back}, so every block contributes a comparable update and the "
           f"layers inside the branches can learn from the stream.")
    return "healthy", None, why


def _scale_vs_rule(weight_tensors):
    """(geometric mean over the weights of Var(W) / the variance the rule of thumb recommends for
    the layer's activation, the rule's name), or None when no rule applies."""
    logs, rules = [], []
    for t in weight_tensors:
        rec = policies.recommended_variance(t.spec)
        var = t.distribution.variance()
        if rec is None or not rec[0] > 0 or not var > 0:
            continue
        logs.append(math.log(var) - math.log(rec[0]))  # not log(var / rec): a subnormal var underflows to 0
        rules.append(rec[1])
    if not logs:
        return None
    return math.exp(sum(logs) / len(logs)), max(dict.fromkeys(rules), key=rules.count)


def branch_layers(stages) -> dict:
    """Layer index -> "end" for the last layer of a residual branch, "inside" for its other layers."""
    out, first = {}, None
    for st in stages:
        if st.branch_start:
            first = st.index
        if first is not None:
            out[st.index] = "end" if st.branch_end else "inside"
        if st.branch_end:
            first = None
    return out


def problems(lay: dict, branch: str | None = None) -> list:
    """A layer's problems. In a residual branch (``branch``: "inside" or "end") a small signal or gradient is
    no problem: the stream carries both past the branch, and GPT-2, Fixup and SkipInit start their branches
    small or at zero on purpose (the stream is judged instead); nor are equal weights in a branch's last
    layer: each of its units feeds its own coordinate of the stream, so they receive different gradients."""
    out = []
    if lay["symmetric"] and branch != "end":
        out.append("symmetric")
    if lay["saturated_fraction"] is not None and lay["saturated_fraction"] > SATURATION_LIMIT:
        out.append("saturated")
    fr, br = lay["forward_ratio"], lay["backward_ratio"]
    if branch is None and ((fr is not None and fr < 1 / BAND) or (br is not None and br < 1 / BAND)):
        out.append("vanishing")
    if lay["overflow"] or (fr is not None and fr > BAND) or (br is not None and br > BAND):
        out.append("exploding")
    return out


def warnings(stages, layers, weight_tensors, bias_tensors) -> list:
    out = []
    for t in [*weight_tensors, *[b for b in bias_tensors if b is not None]]:
        for w in t.warnings:
            out.append({"code": w["code"], "layer": t.spec.layer, "tensor": t.name, "message": w["message"]})
    for st, lay in zip(stages, layers):
        if lay["dead_fraction"] is not None and lay["dead_fraction"] > DEAD_WARN:
            out.append({"code": "dead_relu", "layer": st.name, "tensor": None, "message": (
                f"{100 * lay['dead_fraction']:.0f}% of the ReLU units of layer {st.name} output zero for every probe "
                "example: they get no gradient and may never recover")})
        sat = lay["saturated_fraction"]
        if sat is not None and SATURATION_WARN < sat <= SATURATION_LIMIT:
            out.append({"code": "saturation", "layer": st.name, "tensor": None, "message": (
                f"{100 * sat:.0f}% of the {st.activation.name} outputs of layer {st.name} are saturated "
                f"(below the {100 * SATURATION_LIMIT:.0f}% that counts as a saturated network)")})
    return out
