"""Request documents and assertions shared by the API tests."""

from __future__ import annotations

import json

#: The issue's example document.
MLP = {
    "architecture": {"layers": [
        {"type": "dense", "name": "fc1", "in_features": 784, "out_features": 256, "activation": "relu"},
        {"type": "conv2d", "in_channels": 3, "out_channels": 64, "kernel_size": [3, 3], "groups": 1, "activation": "tanh"},
    ]},
    "scheme": "he_normal",
    "seed": 42,
    "dtype": "float32",
    "layout": "torch",
    "bias": "zeros",
}

#: A small document touching several layer types, schemes and policies.
MIXED = {
    "architecture": {"layers": [
        {"type": "embedding", "name": "emb", "num_embeddings": 50, "embedding_dim": 8},
        {"type": "lstm", "name": "rnn", "input_size": 8, "hidden_size": 6, "scheme": "keras_default"},
        {"type": "conv1d", "name": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2,
         "activation": {"name": "leaky_relu", "negative_slope": 0.2}},
        {"type": "attention", "name": "attn", "embed_dim": 8, "num_heads": 2, "scheme": {"name": "xavier_normal", "truncate": True}},
        {"type": "layernorm", "name": "ln", "normalized_shape": [8]},
        {"type": "dense", "name": "head", "in_features": 8, "out_features": 3, "activation": "softmax",
         "scheme": "orthogonal", "bias": {"name": "uniform", "low": -0.1, "high": 0.1}},
    ]},
    "scheme": "auto",
    "seed": 1234,
}


def small(**kw) -> dict:
    """One dense layer 3 -> 2 (tanh), seed 42, plus overrides."""
    doc = {"architecture": {"layers": [{"type": "dense", "name": "fc", "in_features": 3, "out_features": 2,
                                        "activation": "tanh"}]}, "seed": 42}
    doc.update(kw)
    return doc



def assert_problem(r, status: int, kind: str) -> dict:
    """The response is an RFC 9457 problem of this status and kind; returns its body."""
    assert r.status_code == status, r.get_data(as_text=True)[:500]
    assert r.mimetype == "application/problem+json"
    body = json.loads(r.get_data())
    assert body["type"] == f"urn:weightinit:problem:{kind}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    assert r.headers["X-Weightinit-Version"] and r.headers["X-Content-Type-Options"] == "nosniff"
    return body
