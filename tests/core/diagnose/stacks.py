"""The residual and transformer diagnose documents the tests (and the explorer's presets) run: a pre-LN or
post-LN stack of GPT-2 blocks whose layers carry their roles, and a deep plain MLP."""

from __future__ import annotations


def transformer(blocks: int, width: int, *, post: bool = False, heads: int = 2, tokens: int = 4, **doc) -> dict:
    """``blocks`` GPT-2 blocks of ``width`` (MLP 4 x width, gelu) as a diagnose document.

    Pre-LN (GPT-2): x += attn(ln_1(x)); x += mlp(ln_2(x)); then ln_f. Post-LN (the original
    transformer): x = ln_1(x + attn(x)); x = ln_2(x + mlp(x)). Each branch is ``[first, last]`` in
    ``residual`` and its last layer has role attn_out or mlp_out, the roles the recipes read."""
    layers, residual = [], []

    def add(**layer) -> int:
        layers.append(layer)
        return len(layers) - 1

    def ln(name):
        return add(type="layernorm", name=name, normalized_shape=width)

    for b in range(blocks):
        p = f"h{b}."
        for n, (inner, out) in enumerate((
                ({"name": p + "attn.c_attn", "out_features": 3 * width, "role": "attn_qkv"},
                 {"name": p + "attn.c_proj", "in_features": width, "role": "attn_out"}),
                ({"name": p + "mlp.c_fc", "out_features": 4 * width, "activation": "gelu", "role": "mlp_in"},
                 {"name": p + "mlp.c_proj", "in_features": 4 * width, "role": "mlp_out"}))):
            first = None if post else ln(f"{p}ln_{n + 1}")
            i = add(type="dense", in_features=width, **inner)
            last = add(type="dense", out_features=width, **out)
            residual.append([i if first is None else first, last])
            if post:
                ln(f"{p}ln_{n + 1}")
    if not post:
        ln("ln_f")
    return {"architecture": {"layers": layers}, "residual": residual, "tokens": tokens, "heads": heads, **doc}


def mlp(activation: str, depth: int, width: int, **doc) -> dict:
    layers = [{"type": "dense", "name": f"fc{i}", "in_features": width, "out_features": width, "activation": activation}
              for i in range(depth)]
    return {"architecture": {"layers": layers}, **doc}
