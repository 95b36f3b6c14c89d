"""The byte-compatibility corpus: request documents and the exchanges recorded for each.

Every exchange is an HTTP request against ``create_app()`` (Flask's test client, default
configuration unless the case names overrides): the document, the endpoint, the format, extra
headers. ``digests.json`` holds, per exchange, the status, the headers that carry bytes of the
contract (ETag, Content-Length, Repr-Digest, ...) and the sha-256 of the body. The suite checks
that the same exchanges give the same bytes (test_corpus.py); ``python -m tests.corpus.record``
rewrites digests.json, which is only right when bytes change on purpose (ENGINE_VERSION moves and
CHANGELOG.md says why).

The documents cover every layer type, both layouts, every dtype, every scheme family and policy,
``rng: torch``, ``tensors`` selections, per-layer schemes and biases, and bad documents for every
kind of error the service answers.
"""

from __future__ import annotations

import json

DENSE = {"type": "dense", "name": "fc", "in_features": 6, "out_features": 4, "activation": "relu"}

ZOO = [
    {"type": "dense", "name": "fc1", "in_features": 12, "out_features": 8, "activation": "relu"},
    {"type": "conv1d", "name": "c1", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2,
     "activation": {"name": "leaky_relu", "negative_slope": 0.2}},
    {"type": "conv2d", "name": "c2", "in_channels": 4, "out_channels": 8, "kernel_size": [3, 5], "groups": 2,
     "activation": "tanh"},
    {"type": "conv3d", "name": "c3", "in_channels": 2, "out_channels": 3, "kernel_size": [1, 2, 3]},
    {"type": "conv_transpose1d", "name": "u1", "in_channels": 6, "out_channels": 4, "kernel_size": 3, "groups": 2},
    {"type": "conv_transpose2d", "name": "u2", "in_channels": 3, "out_channels": 2, "kernel_size": [2, 2]},
    {"type": "conv_transpose3d", "name": "u3", "in_channels": 2, "out_channels": 2, "kernel_size": 2},
    {"type": "embedding", "name": "emb", "num_embeddings": 40, "embedding_dim": 8},
    {"type": "rnn", "name": "rnn", "input_size": 8, "hidden_size": 5, "activation": "tanh"},
    {"type": "lstm", "name": "lstm", "input_size": 5, "hidden_size": 6},
    {"type": "gru", "name": "gru", "input_size": 6, "hidden_size": 4},
    {"type": "batchnorm", "name": "bn", "num_features": 8},
    {"type": "layernorm", "name": "ln", "normalized_shape": [2, 4]},
    {"type": "attention", "name": "attn", "embed_dim": 8, "num_heads": 2},
    {"type": "tensor", "name": "pos", "shape": [1, 5, 8], "fan_in": 8, "fan_out": 8},
]

MLP = [
    {"type": "dense", "name": "fc1", "in_features": 16, "out_features": 12, "activation": "tanh"},
    {"type": "dense", "name": "fc2", "in_features": 12, "out_features": 8, "activation": "relu"},
    {"type": "dense", "name": "out", "in_features": 8, "out_features": 3, "activation": "softmax"},
]


def arch(*layers) -> dict:
    return {"layers": list(layers)}


def tensor(shape, name="w", **kw) -> dict:
    return {"type": "tensor", "name": name, "shape": list(shape), **kw}


#: name -> the document (a dict, or raw bytes for bodies that are not a JSON object).
DOCUMENTS: dict[str, object] = {
    # every layer type, both layouts, every dtype
    "zoo torch auto": {"architecture": arch(*ZOO), "seed": 1},
    "zoo keras auto": {"architecture": arch(*ZOO), "layout": "keras", "seed": 2},
    "zoo torch_default": {"architecture": arch(*ZOO), "scheme": "torch_default", "seed": 3},
    "zoo keras_default keras": {"architecture": arch(*ZOO), "scheme": "keras_default", "layout": "keras", "seed": 4},
    "mlp float64": {"architecture": arch(*MLP), "dtype": "float64", "seed": 5},
    "mlp float16": {"architecture": arch(*MLP), "dtype": "float16", "scheme": "he_uniform", "seed": 6},
    "mlp bfloat16": {"architecture": arch(*MLP), "dtype": "bfloat16", "scheme": "xavier_normal", "seed": 7},
    # every scheme family
    "xavier_uniform gain tanh": {"architecture": arch(tensor((20, 30))), "scheme": {"name": "glorot_uniform", "gain": "tanh"}},
    "xavier_normal truncate": {"architecture": arch(tensor((20, 30))), "scheme": {"name": "xavier_normal", "truncate": True}},
    "he_normal fan_out slope": {"architecture": arch(tensor((16, 8, 3, 3))),
                                "scheme": {"name": "kaiming_normal", "mode": "fan_out", "negative_slope": 0.1}},
    "he_uniform fan_geo_avg": {"architecture": arch(tensor((30, 20))), "scheme": {"name": "he_uniform", "mode": "fan_geo_avg"}},
    "lecun_normal": {"architecture": arch(tensor((30, 20))), "scheme": "lecun_normal", "seed": 9},
    "lecun_uniform keras": {"architecture": arch(tensor((4, 3, 5, 6))), "scheme": "lecun_uniform", "layout": "keras"},
    "uniform_fan_in": {"architecture": arch(tensor((30, 20))), "scheme": "uniform_fan_in"},
    "constants": {"architecture": arch(tensor((3, 4), "a", scheme="zeros"), tensor((3, 4), "b", scheme="ones"),
                                       tensor((3, 4), "c", scheme={"name": "constant", "value": -0.25}))},
    "uniform normal truncated": {"architecture": arch(
        tensor((50, 40), "u", scheme={"name": "uniform", "low": -0.3, "high": 0.1}),
        tensor((50, 40), "n", scheme={"name": "normal", "mean": 0.5, "std": 0.02}),
        tensor((50, 40), "t", scheme={"name": "truncated_normal", "std": 0.02}),
        tensor((50, 40), "tail", scheme={"name": "truncated_normal", "mean": 0, "std": 1, "low": 3, "high": 4})), "seed": 11},
    "orthogonal identity dirac sparse": {"architecture": arch(
        tensor((12, 20), "q", scheme={"name": "orthogonal", "gain": "relu"}),
        tensor((6, 9), "i", scheme={"name": "identity", "gain": 2}),
        tensor((8, 4, 3, 3), "d", scheme={"name": "dirac", "groups": 2}),
        tensor((30, 10), "s", scheme={"name": "sparse", "sparsity": 0.3})), "seed": 12},
    "biases and overrides": {"architecture": arch(
        {**DENSE, "name": "a", "bias": {"name": "uniform", "low": -0.1, "high": 0.1}},
        {**DENSE, "name": "b", "in_features": 4, "bias": False, "scheme": "orthogonal"},
        {"type": "layernorm", "name": "ln", "normalized_shape": 4, "scheme": "normal", "bias": "ones"}),
        "bias": {"name": "constant", "value": 0.01}, "scheme": "lecun_normal", "seed": 13},
    "bias false": {"architecture": arch(*MLP), "bias": False, "seed": 14},
    "tensors selection": {"architecture": arch(*ZOO), "tensors": ["c*.weight", "lstm.bias_*", "attn.out_proj.*"], "seed": 15},
    "one tensor": {"architecture": arch(*MLP), "tensors": ["fc2.weight"], "seed": 16},
    "big seed": {"architecture": arch(*MLP), "seed": 2 ** 63 - 1},
    # rng torch
    "torch default replay": {"architecture": arch(*ZOO), "scheme": "torch_default", "rng": "torch", "seed": 17},
    "torch he_normal replay": {"architecture": arch(*MLP), "scheme": "he_normal", "rng": "torch", "seed": 18},
    "torch selection": {"architecture": arch(*MLP), "scheme": "xavier_uniform", "rng": "torch", "tensors": ["out.*"]},
    "torch orthogonal": {"architecture": arch(tensor((10, 14))), "scheme": "orthogonal", "rng": "torch", "seed": 19},
    # a tensor large enough for the compiled JSON printer and several blocks
    "large tensor": {"architecture": arch(tensor((600, 500))), "scheme": "he_normal", "seed": 20},
    # bad documents: every kind of error
    "unknown top field": {"architecture": arch(DENSE), "sede": 1},
    "unknown layer field": {"architecture": arch({**DENSE, "kernel": 3})},
    "unknown layer type": {"architecture": arch({"type": "linear", "in_features": 2, "out_features": 2})},
    "missing required field": {"architecture": arch({"type": "conv2d", "in_channels": 3, "out_channels": 4})},
    "wrong types": {"architecture": arch({**DENSE, "in_features": "6", "out_features": 4.5}), "seed": True},
    "bad scheme name": {"architecture": arch(DENSE), "scheme": "he_normall"},
    "bad scheme parameter": {"architecture": arch(DENSE), "scheme": {"name": "normal", "std": -1}},
    "unknown scheme parameter": {"architecture": arch(DENSE), "scheme": {"name": "he_normal", "gainn": 2}},
    "groups do not divide": {"architecture": arch({"type": "conv2d", "in_channels": 3, "out_channels": 4,
                                                   "kernel_size": 3, "groups": 2})},
    "heads do not divide": {"architecture": arch({"type": "attention", "embed_dim": 10, "num_heads": 3})},
    "duplicate names": {"architecture": arch(DENSE, DENSE)},
    "pattern matches nothing": {"architecture": arch(DENSE), "tensors": ["fc.*", "nope"]},
    "float16 overflow": {"architecture": arch(tensor((4, 4))), "dtype": "float16",
                         "scheme": {"name": "normal", "std": 10000}},
    "orthogonal on 1-D": {"architecture": arch(tensor((5,))), "scheme": "orthogonal"},
    "empty layers": {"architecture": arch()},
    "bad enums": {"architecture": arch(DENSE), "dtype": "float8", "layout": "jax", "rng": "cuda"},
    "seed out of range": {"architecture": arch(DENSE), "seed": 2 ** 63},
    "bad activation": {"architecture": arch({**DENSE, "activation": "swish"})},
    "bad name": {"architecture": arch({**DENSE, "name": "../etc"})},
    "json too large": {"architecture": arch(tensor((4096, 1025)))},
    "whole matrix too large": {"architecture": arch(tensor((4097, 4096))), "scheme": "orthogonal"},
    "not an object": b"[1, 2, 3]",
    "malformed json": b'{"architecture": ',
    "empty body": b"",
}

#: Documents for POST /v1/diagnose.
DIAGNOSE = {
    "diagnose tanh schemes": {"architecture": arch(*[{"type": "dense", "name": f"l{i}", "in_features": 16,
                                                      "out_features": 16, "activation": "tanh"} for i in range(4)]),
                              "schemes": ["xavier_uniform", {"name": "normal", "std": 0.01}, {"name": "normal", "std": 1},
                                          "zeros"], "batch": 32, "seed": 21},
    "diagnose conv": {"architecture": arch({"type": "conv2d", "name": "c", "in_channels": 3, "out_channels": 4,
                                            "kernel_size": 3, "activation": "relu"},
                                           {"type": "dense", "name": "d", "in_features": 4 * 6 * 6, "out_features": 5}),
                      "spatial_size": [6, 6], "batch": 8, "seed": 22},
    "diagnose bad layer": {"architecture": arch({"type": "lstm", "input_size": 2, "hidden_size": 2})},
    "diagnose chain mismatch": {"architecture": arch(DENSE, {**DENSE, "name": "g", "in_features": 5})},
    "diagnose batch too large": {"architecture": arch(DENSE), "batch": 4096},
    "diagnose tensors": {"architecture": arch(DENSE), "tensors": ["fc.weight"]},
}

FORMATS = ("json", "npy", "npz", "safetensors")
#: Headers every exchange sends: a fixed request id, so that problem bodies are reproducible.
REQUEST_HEADERS = {"X-Request-ID": "corpus"}
#: Response headers that carry the contract's bytes.
RECORDED_HEADERS = ("Content-Type", "Content-Length", "ETag", "Repr-Digest", "Content-Digest", "Content-Disposition",
                    "Content-Range", "Accept-Ranges", "Cache-Control", "Vary", "X-Weightinit-Seed",
                    "X-Weightinit-Scheme")


def exchanges() -> list[dict]:
    """Every recorded exchange: {name, path, body (bytes), headers}."""
    out = []
    for name, doc in DOCUMENTS.items():
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        out.append({"name": f"{name} | plan", "path": "/v1/plan", "body": raw, "headers": {}})
        if isinstance(doc, bytes):
            out.append({"name": f"{name} | weights", "path": "/v1/weights", "body": raw, "headers": {}})
            continue
        for fmt in FORMATS:
            out.append({"name": f"{name} | {fmt}", "path": "/v1/weights",
                        "body": json.dumps({**doc, "format": fmt}).encode(), "headers": {}})
    zoo = json.dumps(DOCUMENTS["zoo torch auto"]).encode()
    out += [
        {"name": "negotiated safetensors", "path": "/v1/weights", "body": zoo,
         "headers": {"Accept": "application/vnd.safetensors"}},
        {"name": "negotiated octet-stream", "path": "/v1/weights", "body": zoo,
         "headers": {"Accept": "application/octet-stream"}},
        {"name": "not acceptable", "path": "/v1/weights", "body": zoo, "headers": {"Accept": "text/csv"}},
        {"name": "format against accept", "path": "/v1/weights",
         "body": json.dumps({**DOCUMENTS["zoo torch auto"], "format": "npz"}).encode(),
         "headers": {"Accept": "application/json"}},
        {"name": "unsupported media type", "path": "/v1/weights", "body": zoo,
         "headers": {"Content-Type": "text/plain"}},
        {"name": "range of safetensors", "path": "/v1/weights",
         "body": json.dumps({**DOCUMENTS["large tensor"], "format": "safetensors"}).encode(),
         "headers": {"Range": "bytes=1000-299999"}},
        {"name": "suffix range of npy", "path": "/v1/weights",
         "body": json.dumps({**DOCUMENTS["orthogonal identity dirac sparse"], "tensors": ["q"], "format": "npy"}).encode(),
         "headers": {"Range": "bytes=-100"}},
        {"name": "unsatisfiable range", "path": "/v1/weights",
         "body": json.dumps({**DOCUMENTS["one tensor"], "format": "npy"}).encode(),
         "headers": {"Range": "bytes=999999-"}},
    ]
    for name, doc in DIAGNOSE.items():
        out.append({"name": name, "path": "/v1/diagnose", "body": json.dumps(doc).encode(), "headers": {}})
    return out
