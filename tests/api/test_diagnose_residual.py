"""POST /v1/diagnose with residual branches and attention over HTTP: the stream, its verdict, the errors
(422 naming the field, 413 naming the limit, attention's work counted) and the explorer's new presets.

Responses are checked against openapi.yaml (``check_openapi``)."""

from __future__ import annotations

import json

import pytest

from service import create_app
from service.config import load_config
from service.core import diagnose as dg
from tests.core.diagnose.stacks import mlp, transformer
from tests.helpers import diagnose_of, probe_of

from .helpers import assert_problem

STACK = transformer(8, 16, batch=8, seed=1, schemes=["auto", "gpt2"])


def test_a_pre_ln_stack_reports_its_stream(client, check_openapi):
    r = client.post("/v1/diagnose", json=STACK)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": STACK}, r)
    body = r.get_json()
    assert body == json.loads(json.dumps(diagnose_of(STACK)))     # the same numbers as the engine
    assert body["input_shape"] == [4, 16] and body["output_shape"] == [4, 16]
    assert body["request"]["residual"] == STACK["residual"] and (body["request"]["tokens"], body["request"]["heads"]) == (4, 2)
    assert body["thresholds"]["stream_growth"] == 2.0
    auto, gpt2 = body["results"]
    assert (auto["verdict"], gpt2["verdict"]) == ("growing", "healthy"), auto["explanation"]
    assert len(auto["stream"]) == 16 and auto["stream"][-1]["ratio"] > 2 > gpt2["stream"][-1]["ratio"]
    assert [lay["type"] for lay in auto["layers"][:3]] == ["layernorm", "dense", "dense"]


def test_documents_without_residual_answer_as_before(client):
    """No `residual`: no stream, no stream_growth threshold (the bytes of existing documents are kept)."""
    doc = {"architecture": {"layers": [{"type": "dense", "in_features": 8, "out_features": 8, "activation": "relu"}]},
           "batch": 4}
    body = client.post("/v1/diagnose", json=doc).get_json()
    assert "stream" not in body["results"][0] and "stream_growth" not in body["thresholds"]
    assert set(body["request"]) & {"residual", "tokens", "heads"} == set()


@pytest.mark.parametrize("doc, field, words", [
    ({**STACK, "residual": [[0, 2], [1, 5]]}, "residual.1", "must start after the previous range's last entry 2"),
    ({**STACK, "residual": [[0, 1]]}, "residual.0", "its role must be one of attn_out, mlp_out, residual_out"),
    ({**STACK, "heads": 5}, "architecture.layers.1.out_features", "multiple of 3 x heads = 15"),
    ({**STACK, "tokens": 0}, "tokens", "greater than or equal to 1"),
])
def test_bad_residual_documents_are_422_naming_the_field(client, doc, field, words, check_openapi):
    r = client.post("/v1/diagnose", json=doc)
    body = assert_problem(r, 422, "invalid-document")
    assert words in body["errors"][field][0], body["errors"]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": doc}, r)


def test_attentions_work_is_limited_413_naming_the_limit(check_openapi):
    """Long sequences cost tokens^2 per attention: the estimate counts it, and the limit answers 413 before
    anything is drawn."""
    doc = {**STACK, "tokens": 1024, "schemes": ["gpt2"]}
    cost = dg.estimate_cost(probe_of(doc))
    attention = 3 * 8 * sum(st.attention_macs for st in probe_of(doc).stages)
    # at 1024 tokens attention is the largest part (the elementwise work on 1024 tokens' activations,
    # cost.ELEMENTWISE_WORK, most of the rest)
    assert attention > cost["multiply_adds"] / 3
    client = create_app({"diagnose_max_cost": cost["multiply_adds"] - 1}).test_client()
    r = client.post("/v1/diagnose", json=doc)
    body = assert_problem(r, 413, "limit-exceeded")
    assert (body["limit"], body["requested"]) == ("diagnose_max_cost", cost["multiply_adds"])
    assert "diagnose_max_cost" in body["detail"]
    check_openapi({"path": "/v1/diagnose", "method": "POST", "json": doc}, r)


def test_the_explorers_residual_presets_fit_the_default_limits(client):
    """explorer.js's two claims: the 48-block pre-LN stack (width 32, 8 tokens, 4 heads, batch 16, up to 5
    schemes) and the 30-layer ReLU MLP (256 wide, batch 128, up to 3) run under the default limits."""
    js = client.get("/explorer/explorer.js").get_data(as_text=True)
    for text in ("arch: transformer(48, 32, 8, 4)", "batch: 16", 'arch: mlp("relu", 30, 256)', 'growing: "growing"'):
        assert text in js, text
    cfg = load_config(environ={})
    for doc in (transformer(48, 32, tokens=8, heads=4, batch=16, schemes=["auto"] * 5),
                mlp("relu", 30, 256, batch=128, schemes=["he_normal"] * 3)):
        dg.check_limits(dg.estimate_cost(probe_of(doc)), cfg.diagnose_limits())
