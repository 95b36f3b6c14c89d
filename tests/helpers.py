"""Shared test helpers: small request documents and array decoding."""

from __future__ import annotations

import hashlib

import numpy as np

from service import document
from service.core import SpecError
from service.core.dtypes import DTYPES, as_float
from service.core import diagnose as dg
from service.document import ValidationError, flatten_messages, load_diagnose_request
from service.output import formats
from service.output.jsonenc import document_with_values
from service.output.report import Report


def plan_of(doc, **kw):
    """The Plan of a request document, validated as every entry point validates it."""
    return document.plan(doc, **kw)


def diagnose_of(doc, **kw) -> dict:
    """A diagnose document, validated as the API validates it, run by the engine."""
    return dg.diagnose(load_diagnose_request(doc), **kw)


def probe_of(doc) -> dg.Probe:
    """The Probe (network and plans) of a diagnose document."""
    return dg.build_probe(load_diagnose_request(doc))


def artifact_of(plan, fmt: str, **kw):
    """The artifact of a Plan in a format (what the CLI and the API encode)."""
    return formats.artifact(plan, fmt, **kw)


def engine_sha256(doc: dict, fmt: str, length: int | None = None) -> str:
    """sha-256 (hex) of the first ``length`` bytes (all when None) the engine encodes for a request
    document in ``fmt`` (its "format" member ignored): what every server must send for it."""
    h, left = hashlib.sha256(), length
    for chunk in artifact_of(plan_of({k: v for k, v in doc.items() if k != "format"}), fmt).chunks():
        chunk = memoryview(chunk).cast("B")[:left]
        h.update(chunk)
        if left is not None:
            left -= len(chunk)
            if left == 0:
                break
    return h.hexdigest()


def with_values(plan) -> dict:
    """The JSON weights document of a plan, built the slow way (values as arrays, for one orjson call)."""
    report = Report(plan)
    return document_with_values(report, formats.document(report))


def report_of(plan) -> dict:
    """The report with its totals (what /v1/plan answers)."""
    return formats.document(Report(plan))


def tensor_doc(shape, scheme, *, dtype="float32", seed=0, fan_in=None, fan_out=None, layout="torch"):
    layer = {"type": "tensor", "name": "t", "shape": list(shape)}
    if fan_in is not None:
        layer["fan_in"] = fan_in
    if fan_out is not None:
        layer["fan_out"] = fan_out
    return {"architecture": {"layers": [layer]}, "scheme": scheme, "dtype": dtype, "seed": seed, "layout": layout}


def draw(doc, index=0):
    """(TensorPlan, values as float64) of one tensor of a document."""
    plan = plan_of(doc)
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


def problem_of(doc, **kw) -> tuple[str, str, str | None]:
    """(field, message, limit) of a bad request document, as every entry point answers it: the
    boundary's first error when the document's shape is wrong, else the engine's."""
    try:
        plan_of(doc, **kw)
    except ValidationError as e:
        field, messages = next(iter(flatten_messages(e.messages).items()))
        return field, messages[0], None
    except SpecError as e:
        return e.field, e.message, e.limit
    raise AssertionError(f"no error for {doc!r}")


#: A tiny Llama config (the hf format's tests): 21 tensors, 35,136 bytes in float32.
LLAMA_TINY = {"architecture": {"hf_config": {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128, "hidden_size": 16,
    "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}}}
#: A tiny GPT-2 with its tied head left out, in float16.
GPT2_TINY = {"architecture": {"hf_config": {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 100, "n_embd": 16, "n_layer": 2,
    "n_head": 4, "n_positions": 32}}, "dtype": "float16"}
