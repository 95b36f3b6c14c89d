"""``conv1d`` .. ``conv3d`` and ``conv_transpose1d`` .. ``conv_transpose3d``: PyTorch's ``nn.Conv*d`` and
``nn.ConvTranspose*d`` (Keras ``Conv*D`` / ``Conv*DTranspose``), with groups.

Tensors, PyTorch's view: a convolution's ``weight`` is (out_channels, in_channels/groups, *k), a
transposed convolution's (in_channels, out_channels/groups, *k), so its fan_in is
out_channels/groups * prod(k); ``bias`` (out_channels). Keras stores the kernel (*k, in/groups,
out) and (*k, out/groups, in). The constructor draws as ``nn.Linear`` does.
"""

from __future__ import annotations

from ..fields import Field, IntOrList, Rule, dim
from ..torch import modules
from .base import TRANSFORMERS, LayerType


def _groups_divide(values: dict):
    g = values.get("groups", 1)
    for key in ("in_channels", "out_channels"):
        if key in values and values[key] % g:
            return "groups", f"groups ({g}) must divide {key} ({values[key]})"
    return None


class Conv(LayerType):
    biased = True
    rules = (Rule(_groups_divide, "groups divides in_channels and out_channels"),)

    def __init__(self, dims: int, transposed: bool):
        self.dims, self.transposed = dims, transposed
        self.name = f"conv_transpose{dims}d" if transposed else f"conv{dims}d"
        self.fields = (dim("in_channels"), dim("out_channels"), Field("kernel_size", IntOrList(dims), required=True),
                       dim("groups", required=False, default=1))
        self.forward = "conv" if dims <= 2 and not transposed else None
        self.component = f"Conv{dims}dLayer"
        self.example = {"in_channels": 4, "out_channels": 8, "kernel_size": [3] * dims, "groups": 2}
        self.summary = (f"A {dims}-D convolution or transposed convolution (PyTorch nn.Conv{dims}d / "
                        f"nn.ConvTranspose{dims}d); kernel_size: an integer, or a list of {dims} (one per spatial "
                        "dimension).")

    def kernel(self, layer) -> tuple:
        k = layer.params["kernel_size"]
        return tuple([k] * self.dims if isinstance(k, int) else k)

    def tensors(self, layer, layout, with_bias):
        p = layer.params
        cin, cout, g = p["in_channels"], p["out_channels"], p["groups"]
        k = self.kernel(layer)
        shape = (cin, cout // g, *k) if self.transposed else (cout, cin // g, *k)
        w = self.tensor(layer, "weight", "weight", shape, layout, groups=g)
        out = [w]
        if with_bias:
            out.append(self.tensor(layer, "bias", "bias", (cout,), layout, fans=(w.fan_in, w.fan_out)))
        return out

    def transformers_default(self, t, std, why=None):
        if self.transposed and self.dims == 3:  # transformers' _init_weights lists ConvTranspose1d/2d, not 3d
            spec, reason = self.torch_default(t)
            return spec, f"{reason} (transformers {TRANSFORMERS} _init_weights leaves ConvTranspose3d as constructed)"
        return super().transformers_default(t, std, why)

    def torch_construct(self, gen, layer, with_bias):
        p = layer.params
        return modules.conv(gen, self.dims, self.transposed, p["in_channels"], p["out_channels"], self.kernel(layer),
                            groups=p["groups"], bias=with_bias)


TYPES = tuple(Conv(d, t) for t in (False, True) for d in (1, 2, 3))
