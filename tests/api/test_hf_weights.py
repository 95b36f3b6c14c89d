"""POST /v1/weights and /v1/plan for the hf format: an application/x-tar with its Content-Length known,
Range parts proven by Content-Digest, ETags naming the output options, and the errors of documents
the format cannot write."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from service import create_app
from service.output import formats
from service.output.options import Options
from tests.helpers import LLAMA_TINY, MLP, plan_of

from .helpers import assert_problem

HF = {**LLAMA_TINY, "format": "hf"}
SHARDED = {**HF, "max_shard_size": 20_000}


def post(client, doc, path="/v1/weights", **headers):
    return client.post(path, data=json.dumps(doc), content_type="application/json", headers=headers)


def engine_bytes(doc: dict) -> bytes:
    options = Options(doc.get("metadata", "full"), Options().max_shard_size if "max_shard_size" not in doc else
                      doc["max_shard_size"])
    plan = plan_of({k: v for k, v in doc.items() if k not in ("format", "metadata", "max_shard_size")})
    return b"".join(bytes(c) for c in formats.artifact(plan, "hf", options=options).chunks())


def sha256_field(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


@pytest.fixture(scope="module")
def bounded_client():
    """A server proving parts of up to 8 KiB: the tars here stream, their small parts carry Content-Digest."""
    return create_app({"digest_max_bytes": 8192}).test_client()


@pytest.mark.parametrize("doc, headers", [
    (HF, {}),
    (SHARDED, {"Accept": "application/x-tar"}),
    ({k: v for k, v in SHARDED.items() if k != "format"}, {"Accept": "application/x-tar"}),
    ({**SHARDED, "metadata": "minimal"}, {"Accept": "application/json;q=0.5, application/x-tar"}),
])
@pytest.mark.parametrize("which", ["in-memory", "streamed"])
def test_the_tar_with_its_length_known(client, bounded_client, doc, headers, which):
    c = client if which == "in-memory" else bounded_client
    r = post(c, doc, **headers)
    data = r.get_data()
    assert r.status_code == 200 and r.mimetype == "application/x-tar"
    assert int(r.headers["Content-Length"]) == len(data) and data == engine_bytes(doc)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Disposition"].endswith('.tar"')
    assert ("Repr-Digest" in r.headers) == (which == "in-memory")
    plan = post(c, doc, path="/v1/plan")
    assert plan.json["totals"]["bytes"]["hf"] == len(data)
    assert plan.headers["ETag"].split("-plan")[0] == r.headers["ETag"].split("-hf")[0]


def test_range_parts_are_slices_with_content_digest(bounded_client):
    full = engine_bytes(SHARDED)
    n = len(full)
    etag = post(bounded_client, SHARDED).headers["ETag"]
    for a, b in [(0, 512), (0, 8192), (511, 1025), (n - 10240, n), (n // 2, n // 2 + 8000), (1, n)]:
        r = post(bounded_client, SHARDED, Range=f"bytes={a}-{b - 1}", **{"If-Range": etag})
        assert r.status_code == 206 and r.get_data() == full[a:b], (a, b)
        assert r.headers["Content-Range"] == f"bytes {a}-{b - 1}/{n}" and int(r.headers["Content-Length"]) == b - a
        assert r.headers["ETag"] == etag and r.headers["X-Weightinit-Digest-Max-Bytes"] == "8192"
        assert r.headers.get("Content-Digest") == (sha256_field(full[a:b]) if b - a <= 8192 else None)


def test_hf_responses_validate_against_openapi(client, check_openapi):
    for headers in ({}, {"Range": "bytes=0-99"}):
        kw = {"path": "/v1/weights", "method": "POST", "json": {**SHARDED, "metadata": "minimal"}, "headers": headers}
        r = client.open(**kw)
        assert r.status_code in (200, 206)
        check_openapi(kw, r)
    kw = {"path": "/v1/plan", "method": "POST", "json": SHARDED}
    check_openapi(kw, client.open(**kw))


@pytest.mark.parametrize("fields, suffix", [
    ({}, "hf"),
    ({"metadata": "full", "max_shard_size": "50GB"}, "hf"),
    ({"max_shard_size": 50 * 10 ** 9}, "hf"),
    ({"metadata": "minimal"}, "hf.minimal"),
    ({"max_shard_size": "20KB"}, "hf.shard20000"),
    ({"max_shard_size": 20_000, "metadata": "minimal"}, "hf.minimal.shard20000"),
    ({"format": "safetensors"}, "safetensors"),
    ({"format": "safetensors", "max_shard_size": 5}, "safetensors"),
    ({"format": "safetensors", "metadata": "minimal"}, "safetensors.minimal"),
    ({"format": "npz", "metadata": "minimal", "max_shard_size": 5}, "npz"),
    ({"format": "json", "metadata": "minimal"}, "json"),
])
def test_etags_name_the_options_that_change_the_bytes(client, fields, suffix):
    r = post(client, {**HF, **fields})
    assert r.status_code == 200
    fingerprint = plan_of(LLAMA_TINY).fingerprint
    assert r.headers["ETag"] == f'"{fingerprint}-{suffix}"'
    again = post(client, {**HF, **fields}, **{"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


@pytest.mark.parametrize("fields, suffix", [
    ({}, "plan"),
    ({"metadata": "full", "max_shard_size": "50GB", "format": "hf"}, "plan"),
    ({"metadata": "minimal"}, "plan.minimal"),
    ({"max_shard_size": 9000}, "plan.shard9000"),
    ({"max_shard_size": "9KB", "metadata": "minimal"}, "plan.minimal.shard9000"),
])
def test_plan_etags_name_the_options_its_totals_read(client, fields, suffix):
    """The plan's totals give the safetensors and hf sizes for the options: another body, another ETag."""
    r = post(client, {**LLAMA_TINY, **fields}, path="/v1/plan")
    assert r.status_code == 200 and r.headers["ETag"] == f'"{plan_of(LLAMA_TINY).fingerprint}-{suffix}"'
    default = post(client, LLAMA_TINY, path="/v1/plan").headers["ETag"]
    again = post(client, {**LLAMA_TINY, **fields}, path="/v1/plan", **{"If-None-Match": default})
    assert again.status_code == (304 if suffix == "plan" else 200)


def test_default_options_keep_the_etags_of_layer_documents(client):
    """A layers document's safetensors ETag is the one earlier releases sent (options unset or default)."""
    want = f'"{plan_of(MLP).fingerprint}-safetensors"'
    for extra in ({}, {"metadata": "full"}, {"max_shard_size": "1KB"}):
        r = post(client, {**MLP, "format": "safetensors", **extra})
        assert r.status_code == 200 and r.headers["ETag"] == want


@pytest.mark.parametrize("doc, headers, status, kind, field, message", [
    ({**MLP, "format": "hf"}, {}, 422, "invalid-document", "format", "needs architecture.hf_config"),
    (MLP, {"Accept": "application/x-tar"}, 422, "invalid-document", "format", "needs architecture.hf_config"),
    ({**HF, "tensors": ["lm_head.weight"]}, {}, 422, "invalid-document", "tensors", "tensors must be null"),
    ({**HF, "max_shard_size": 0}, {}, 422, "invalid-document", "max_shard_size", "between 1 and 1125899906842624"),
    ({**HF, "max_shard_size": "2PB"}, {}, 422, "invalid-document", "max_shard_size", '"5GB", "500MB", "2GiB"'),
    ({**HF, "max_shard_size": 2 ** 60}, {}, 422, "invalid-document", "max_shard_size", "between 1 and"),
    ({**HF, "metadata": "none"}, {}, 422, "invalid-document", "metadata", "Must be one of: full, minimal."),
    (HF, {"Accept": "application/json"}, 406, "not-acceptable", None, "application/x-tar"),
])
def test_what_the_hf_format_refuses(client, doc, headers, status, kind, field, message):
    r = post(client, doc, **headers)
    body = assert_problem(r, status, kind)
    assert message in body["detail"]
    if field is not None:
        assert list(body["errors"]) == [field] and body["detail"].startswith(f"{field}: ")


def test_a_folder_whose_headers_pass_the_bound_is_a_413(client):
    """Every shard embedding the 0.7 MB report of 723 tensors: the weights are a 413 naming the limit, the
    plan answers with a null hf size."""
    config = {**LLAMA_TINY["architecture"]["hf_config"], "num_hidden_layers": 80}
    doc = {"architecture": {"hf_config": config}, "format": "hf", "max_shard_size": 1}
    body = assert_problem(post(client, doc), 413, "limit-exceeded")
    assert body["limit"] == "max_hf_header_bytes" and body["allowed"] == 1 << 26
    assert "metadata: minimal" in body["detail"]
    plan = post(client, doc, path="/v1/plan")
    assert plan.status_code == 200 and plan.json["totals"]["bytes"]["hf"] is None
    assert post(client, {**doc, "metadata": "minimal"}).status_code == 200


@pytest.mark.parametrize("doc, has_hf", [
    (LLAMA_TINY, True),
    ({**LLAMA_TINY, "metadata": "minimal", "max_shard_size": 9000}, True),
    ({**LLAMA_TINY, "tensors": ["model.norm.weight"]}, False),
    (MLP, False),
])
def test_plan_totals_give_the_hf_size_only_when_it_applies(client, doc, has_hf):
    totals = post(client, doc, path="/v1/plan").json["totals"]["bytes"]
    assert ("hf" in totals) == has_hf
    if has_hf:
        assert totals["hf"] == len(engine_bytes({**doc, "format": "hf"}))


@pytest.mark.parametrize("fmt, media", [("json", "application/json"), ("npz", "application/zip"),
                                        ("safetensors", "application/vnd.safetensors")])
def test_other_formats_of_an_hf_document(client, fmt, media):
    r = post(client, {**LLAMA_TINY, "format": fmt})
    assert r.status_code == 200 and r.mimetype == media
    plan = plan_of(LLAMA_TINY)
    assert r.get_data() == b"".join(bytes(c) for c in formats.artifact(plan, fmt).chunks())
