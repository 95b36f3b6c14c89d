"""Bad ``architecture.hf_config`` documents: a 422 naming the key under ``architecture.hf_config`` (or
the request field) and saying what is wrong, from the boundary every entry point shares, and over HTTP
as an RFC 9457 problem."""

from __future__ import annotations

import pytest

from service import create_app

from tests.api.helpers import assert_problem
from tests.helpers import plan_of, problem_of

from .configs import TINY

LLAMA = TINY["llama"]
H = "architecture.hf_config"
RANGE = "Must be greater than or equal to 1 and less than or equal to 2147483648."


def hf(base: dict = LLAMA, **keys) -> dict:
    """A document of ``base`` with ``keys`` changed (``...``: left out)."""
    config = {k: v for k, v in {**base, **keys}.items() if v is not ...}
    return {"architecture": {"hf_config": config}}


CASES = [
    # which model
    (hf(model_type="gpt_neox"), f"{H}.model_type",
     "Must be one of: llama, mistral, qwen2, qwen3, gemma, gpt2, bert (got 'gpt_neox')."),
    (hf(model_type=...), f"{H}.model_type", "Missing data for required field."),
    (hf(model_type=None), f"{H}.model_type", "Missing data for required field."),
    (hf(architectures=["LlamaForSequenceClassification"]), f"{H}.architectures",
     "'LlamaForSequenceClassification' is not a llama class weightinit builds; one of: LlamaForCausalLM, LlamaModel"),
    (hf(architectures=["MistralForCausalLM"]), f"{H}.architectures",
     "'MistralForCausalLM' is not a llama class weightinit builds; one of: LlamaForCausalLM, LlamaModel"),
    (hf(architectures=[]), f"{H}.architectures", "must be a list of class names, e.g. ['LlamaForCausalLM']"),
    (hf(architectures="LlamaForCausalLM"), f"{H}.architectures",
     "must be a list of class names, e.g. ['LlamaForCausalLM']"),
    (hf(TINY["bert mlm"], architectures=["BertForNextSentencePrediction"]), f"{H}.architectures",
     "'BertForNextSentencePrediction' is not a bert class weightinit builds; one of: BertForMaskedLM, BertModel"),
    ({"architecture": {"hf_config": ["llama"]}}, H, "must be a config.json object"),
    # missing keys and wrong types
    (hf(vocab_size=...), f"{H}.vocab_size", "Missing data for required field."),
    (hf(num_hidden_layers=...), f"{H}.num_hidden_layers", "Missing data for required field."),
    (hf(TINY["gpt2"], n_embd=...), f"{H}.n_embd", "Missing data for required field."),
    (hf(hidden_size="64"), f"{H}.hidden_size", "Not a valid integer."),
    (hf(hidden_size=64.0), f"{H}.hidden_size", "Not a valid integer."),
    (hf(hidden_size=True), f"{H}.hidden_size", "Not a valid integer."),
    (hf(hidden_size=0), f"{H}.hidden_size", RANGE),
    (hf(num_hidden_layers=1025), f"{H}.num_hidden_layers",
     "Must be greater than or equal to 1 and less than or equal to 1024."),
    (hf(tie_word_embeddings="yes"), f"{H}.tie_word_embeddings", "Not a valid boolean."),
    (hf(attention_bias=1), f"{H}.attention_bias", "Not a valid boolean."),
    (hf(initializer_range="0.02"), f"{H}.initializer_range", "Not a valid number."),
    (hf(initializer_range=-0.02), f"{H}.initializer_range",
     "Must be greater than or equal to 0 and less than or equal to 1000.0."),
    (hf(pad_token_id=1.5), f"{H}.pad_token_id", "Not a valid integer."),
    # null where transformers' config refuses it (test_keys has them all)
    (hf(initializer_range=None), f"{H}.initializer_range", "Field may not be null."),
    (hf(tie_word_embeddings=None), f"{H}.tie_word_embeddings", "Field may not be null."),
    (hf(TINY["mistral"], num_key_value_heads=None), f"{H}.num_key_value_heads", "Field may not be null."),
    (hf(TINY["qwen3"], head_dim=None), f"{H}.head_dim", "Field may not be null."),
    # the keys together
    (hf(num_key_value_heads=3), f"{H}.num_key_value_heads",
     "num_attention_heads (4) must be a multiple of num_key_value_heads (3): each k/v head serves a whole group "
     "of q heads"),
    (hf(hidden_size=66), f"{H}.num_attention_heads",
     "hidden_size (66) must be a multiple of num_attention_heads (4): LlamaConfig.validate_architecture requires it"),
    (hf(TINY["gpt2"], n_head=5), f"{H}.n_head",
     "n_embd (64) must be a multiple of n_head (5): GPT2Attention splits n_embd into n_head heads"),
    (hf(TINY["bert mlm"], num_attention_heads=5), f"{H}.num_attention_heads",
     "hidden_size (64) must be a multiple of num_attention_heads (5): BertSelfAttention splits hidden_size into heads"),
    (hf(pad_token_id=256), f"{H}.pad_token_id",
     "pad_token_id (256) must be a row of the token embedding: -vocab_size (-256) .. 255"),
    (hf(pad_token_id=-257), f"{H}.pad_token_id",
     "pad_token_id (-257) must be a row of the token embedding: -vocab_size (-256) .. 255"),
    (hf(TINY["bert mlm"], pad_token_id=300), f"{H}.pad_token_id",
     "pad_token_id (300) must be a row of the token embedding: -vocab_size (-256) .. 255"),
    # the config's dtype, the request's fields
    (hf(dtype="int8"), f"{H}.dtype",
     "'int8' is not a dtype weightinit writes (float32, float64, float16, bfloat16); name the request's dtype to "
     "choose one"),
    (hf(torch_dtype="float8_e4m3fn"), f"{H}.torch_dtype",
     "'float8_e4m3fn' is not a dtype weightinit writes (float32, float64, float16, bfloat16); name the request's "
     "dtype to choose one"),
    ({**hf(), "layout": "keras"}, "layout",
     "an hf_config's tensors are stored as transformers stores them: layout must be torch"),
    ({**hf(), "rng": "torch"}, "rng",
     "the PyTorch replay of an hf_config (torch.manual_seed, then from_config) is not built: rng must be weightinit"),
    ({"architecture": {"hf_config": LLAMA, "layers": [{"type": "dense", "in_features": 2, "out_features": 2}]}}, H,
     "give either layers or hf_config, not both"),
    ({**hf(), "scheme": {"name": "hf_default", "initializer_range": 0}}, "scheme.initializer_range",
     "must be > 0.0, got 0"),
]


@pytest.mark.parametrize("document, field, message", CASES, ids=[f"{c[1]}: {c[2][:40]}" for c in CASES])
def test_a_bad_hf_config_is_refused_naming_the_key(document, field, message):
    assert problem_of(document)[:2] == (field, message)


def test_an_unknown_config_dtype_is_fine_when_the_request_names_one():
    assert plan_of({**hf(dtype="int8"), "dtype": "bfloat16"}).request.dtype == "bfloat16"


@pytest.fixture(scope="module")
def client():
    return create_app().test_client()


@pytest.mark.parametrize("path", ["/v1/weights", "/v1/plan"])
@pytest.mark.parametrize("document, field, message", CASES[:1] + CASES[-2:-1])
def test_over_http_a_422_problem(client, path, document, field, message):
    problem = assert_problem(client.post(path, json=document), 422, "invalid-document")
    assert problem["errors"] == {field: [message]}


def test_diagnose_takes_no_hf_config(client):
    problem = assert_problem(client.post("/v1/diagnose", json=hf()), 422, "invalid-document")
    assert problem["errors"] == {H: ["/v1/diagnose runs an architecture of layers forward; send architecture.layers"]}


def test_the_hf_format_writes_every_tensor(client):
    document = {**hf(), "format": "hf", "tensors": ["model.norm.weight"]}
    problem = assert_problem(client.post("/v1/weights", json=document), 422, "invalid-document")
    assert problem["errors"] == {"tensors": ["the hf format writes the whole model folder (every tensor): tensors "
                                             "must be null"]}
