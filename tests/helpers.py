"""Shared test helpers: small request documents and array decoding."""

from __future__ import annotations

import numpy as np

from service.core import build_plan
from service.core.dtypes import DTYPES, as_float


def tensor_doc(shape, scheme, *, dtype="float32", seed=0, fan_in=None, fan_out=None, layout="torch"):
    layer = {"type": "tensor", "name": "t", "shape": list(shape)}
    if fan_in is not None:
        layer["fan_in"] = fan_in
    if fan_out is not None:
        layer["fan_out"] = fan_out
    return {"architecture": {"layers": [layer]}, "scheme": scheme, "dtype": dtype, "seed": seed, "layout": layout}


def draw(doc, index=0):
    """(TensorPlan, values as float64) of one tensor of a document."""
    plan = build_plan(doc)
    t = plan.selected[index]
    return t, as_float(t.generate(), DTYPES[t.dtype.name]).astype(np.float64)


MLP = {"architecture": {"layers": [
    {"type": "dense", "name": "fc1", "in_features": 784, "out_features": 256, "activation": "relu"},
    {"type": "dense", "name": "fc2", "in_features": 256, "out_features": 128, "activation": "tanh"},
    {"type": "dense", "name": "head", "in_features": 128, "out_features": 10, "activation": "softmax"},
]}}

ZOO = {"architecture": {"layers": [
    {"type": "dense", "name": "fc1", "in_features": 784, "out_features": 256, "activation": "relu"},
    {"type": "conv2d", "name": "conv", "in_channels": 4, "out_channels": 8, "kernel_size": [3, 5], "groups": 2,
     "activation": "tanh"},
    {"type": "conv_transpose1d", "name": "up", "in_channels": 6, "out_channels": 4, "kernel_size": 3, "groups": 2},
    {"type": "embedding", "name": "emb", "num_embeddings": 100, "embedding_dim": 16},
    {"type": "lstm", "name": "lstm", "input_size": 16, "hidden_size": 32},
    {"type": "gru", "name": "gru", "input_size": 32, "hidden_size": 8},
    {"type": "rnn", "name": "rnn", "input_size": 8, "hidden_size": 8},
    {"type": "batchnorm", "name": "bn", "num_features": 8},
    {"type": "layernorm", "name": "ln", "normalized_shape": [4, 8]},
    {"type": "attention", "name": "attn", "embed_dim": 16, "num_heads": 4},
    {"type": "tensor", "name": "pos", "shape": [1, 10, 16], "fan_in": 16, "fan_out": 16},
]}}
