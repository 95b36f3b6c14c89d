"""A bad document is refused naming the field, never with a bare exception: by the boundary
(service.document) when its shape is wrong, by the engine when only the plan can tell (a scheme
that cannot apply to a tensor's shape, a duplicate name, a pattern that matches nothing)."""

import pytest

from tests.helpers import problem_of, tensor_doc


def dense(**kw):
    layer = {"type": "dense", "name": "l", "in_features": 4, "out_features": 4, **kw}
    return {"architecture": {"layers": [layer]}}


CASES = [
    (dense(in_features=0), "architecture.layers.0.in_features", "greater than or equal to 1"),
    (dense(out_features=-3), "architecture.layers.0.out_features", "greater than or equal to 1"),
    (dense(in_features=2.5), "architecture.layers.0.in_features", "integer"),
    (dense(in_features=True), "architecture.layers.0.in_features", "integer"),
    ({"architecture": {"layers": [{"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3, 3],
                                   "groups": 2}]}}, "architecture.layers.0.groups", "divide"),
    ({"architecture": {"layers": [{"type": "conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3]}]}},
     "architecture.layers.0.kernel_size", "2 entries"),
    ({"architecture": {"layers": [{"type": "attention", "embed_dim": 10, "num_heads": 3}]}},
     "architecture.layers.0.embed_dim", "divisible"),
    ({**dense(), "scheme": {"name": "normal", "std": 0}}, "scheme.std", "> 0"),
    ({**dense(), "scheme": {"name": "normal", "std": -1}}, "scheme.std", "> 0"),
    ({**dense(), "scheme": {"name": "uniform", "low": 1, "high": 1}}, "scheme.low", "< high"),
    ({**dense(), "scheme": {"name": "uniform", "low": 2, "high": 1}}, "scheme.low", "< high"),
    ({**dense(), "scheme": {"name": "sparse", "sparsity": 1.0}}, "scheme.sparsity", "< 1"),
    ({**dense(), "scheme": {"name": "sparse", "sparsity": -0.1}}, "scheme.sparsity", ">= 0"),
    ({**dense(), "scheme": "sparse"}, "scheme.sparsity", "requires"),
    ({**dense(), "scheme": {"name": "he_normal", "std": 1}}, "scheme.std", "unknown parameter"),
    ({**dense(), "scheme": {"name": "he_normal", "mode": "fan_sideways"}}, "scheme.mode", "one of"),
    ({**dense(), "scheme": {"name": "he_normal", "gain": "swish"}}, "scheme.gain", "one of"),
    ({**dense(), "scheme": {"name": "xavier_uniform", "truncate": True}}, "scheme.truncate", "unknown parameter"),
    ({**dense(), "scheme": {"name": "normal", "std": float("nan")}}, "scheme.std", "finite"),
    ({**dense(), "scheme": {"name": "normal", "std": 1e308}}, "scheme.std", "<="),
    ({**dense(), "scheme": "nope"}, "scheme.name", "unknown scheme"),
    (tensor_doc((10,), "orthogonal"), "scheme", "rank >= 2"),
    (tensor_doc((10, 10), "dirac"), "scheme", "rank 3 to 5"),
    (tensor_doc((2, 3, 4), "identity"), "scheme", "2-D"),
    (dense(activation="swish"), "architecture.layers.0.activation", "Must be one of: linear"),
    ({"architecture": {"layers": [{"type": "mlp"}]}}, "architecture.layers.0.type", "Must be one of: dense"),
    (dense(colour="red"), "architecture.layers.0.colour", "Unknown field"),
    ({**dense(), "seed": -1}, "seed", "greater than or equal to 0"),
    ({**dense(), "seed": 2 ** 63}, "seed", "less than or equal to 9223372036854775807"),
    ({**dense(), "dtype": "int8"}, "dtype", "one of"),
    ({**dense(), "layout": "jax"}, "layout", "one of"),
    ({**dense(), "tensors": ["nothing*"]}, "tensors.0", "matches no tensor"),
    ({**dense(), "extra": 1}, "extra", "Unknown field"),
    ({"architecture": {"layers": []}}, "architecture.layers", "Length must be between 1"),
    ({"architecture": {"layers": [{"type": "dense", "name": "a", "in_features": 1, "out_features": 1},
                                  {"type": "dense", "name": "a", "in_features": 1, "out_features": 1}]}},
     "architecture.layers.1.name", "duplicate"),
    (dense(name="../etc"), "architecture.layers.0.name", "ASCII"),
    (dense(name="a/b"), "architecture.layers.0.name", "ASCII"),
    (dense(name="caf\u00e9"), "architecture.layers.0.name", "ASCII"),
    (dense(name="x" * 200), "architecture.layers.0.name", "Length must be between 1 and 128"),
    ({"architecture": {"layers": [{"type": "embedding", "num_embeddings": 3, "embedding_dim": 2, "bias": "zeros"}]}},
     "architecture.layers.0.bias", "no bias"),
]


@pytest.mark.parametrize("doc,field,words", CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_bad_input_names_the_field(doc, field, words):
    got, message, limit = problem_of(doc)
    assert got == field, message
    assert words in message, message
    assert limit is None


def test_not_an_object():
    assert problem_of([1, 2]) == ("_schema", "the request body must be a JSON object", None)
