"""``rnn``, ``lstm``, ``gru``: one-layer recurrent layers, PyTorch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``.

Tensors, PyTorch's names without the ``_l0`` suffix: ``weight_ih`` (gates*H, input_size),
``weight_hh`` (gates*H, H), ``bias_ih``, ``bias_hh`` (gates*H), with the gate blocks in PyTorch's
order (LSTM i, f, g, o; GRU r, z, n; RNN one). Keras stores the kernels (I, gates*H). PyTorch draws
every parameter from U[+-1/sqrt(H)]; Keras: kernel glorot_uniform, recurrent kernel orthogonal,
biases zero except the LSTM forget gate (``unit_forget_bias``).
"""

from __future__ import annotations

import math

from .. import schemes
from ..fields import dim
from ..gates import GATES
from ..torch import modules
from .base import TRANSFORMERS, LayerType


class Recurrent(LayerType):
    biased = True
    fields = (dim("input_size"), dim("hidden_size"))
    component = "RecurrentLayer"
    summary = ("A one-layer recurrent layer (PyTorch nn.RNN / nn.LSTM / nn.GRU): weight_ih (gates*H, I), "
               "weight_hh (gates*H, H), bias_ih, bias_hh (gates*H); gates = 1, 4, 3 (rnn, lstm, gru) in PyTorch's "
               "order.")

    example = {"input_size": 8, "hidden_size": 16}

    def __init__(self, name: str):
        self.name = name
        self.gates = GATES[name]

    def tensors(self, layer, layout, with_bias):
        inp, h = layer.params["input_size"], layer.params["hidden_size"]
        g = self.gates
        ih = self.tensor(layer, "weight_ih", "weight", (g * h, inp), layout, gates=g, kind="ih")
        hh = self.tensor(layer, "weight_hh", "weight", (g * h, h), layout, gates=g, kind="hh")
        out = [ih, hh]
        if with_bias:
            out.append(self.tensor(layer, "bias_ih", "bias", (g * h,), layout, fans=(ih.fan_in, ih.fan_out), gates=g,
                                   kind="ih"))
            out.append(self.tensor(layer, "bias_hh", "bias", (g * h,), layout, fans=(hh.fan_in, hh.fan_out), gates=g,
                                   kind="hh"))
        return out

    def torch_default(self, t):
        b = 1.0 / math.sqrt(t.torch_shape[0] // t.gates)
        return (schemes.spec("uniform", low=-b, high=b),
                f"PyTorch {self.name.upper()}: every parameter U[-1/sqrt(hidden_size), +1/sqrt(hidden_size)]")

    def keras_default(self, t):
        if t.role == "bias" and self.name == "lstm" and t.kind == "ih":
            return (schemes.spec("lstm_forget_bias"),
                    "Keras LSTM (unit_forget_bias): forget-gate bias 1, the rest 0 (kept in bias_ih; bias_hh is 0)")
        if t.role == "weight" and t.kind == "hh":
            return schemes.spec("orthogonal"), "Keras recurrent layers: recurrent_kernel orthogonal"
        return super().keras_default(t)

    def transformers_default(self, t, std, why=None):
        if self.name != "lstm":  # transformers' _init_weights leaves RNN and GRU as their constructor drew them
            spec, reason = self.torch_default(t)
            return spec, f"{reason} (transformers {TRANSFORMERS} _init_weights leaves {self.name.upper()} as constructed)"
        if t.role == "bias":
            return schemes.spec("zeros"), f"transformers {TRANSFORMERS} _init_weights: LSTM biases 0"
        return schemes.spec("xavier_uniform"), f"transformers {TRANSFORMERS} _init_weights: LSTM weights xavier_uniform_"

    def torch_construct(self, gen, layer, with_bias):
        return modules.recurrent(gen, self.name, layer.params["input_size"], layer.params["hidden_size"],
                                 bias=with_bias)

    def torch_values(self, layer, params, tensors):
        by_name = {name: (arr, exact) for name, arr, exact in params}
        return {t.name: by_name[f"{t.spec.suffix}_l0"] for t in tensors}


TYPES = tuple(Recurrent(n) for n in GATES)
