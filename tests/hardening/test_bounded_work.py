"""Bounded work and bounded answers for every request (issue 12, section 2).

Each case was an unbounded cost on the engine before it was fixed: a list validated item by item
before its length, a problem body listing every bad field, whole-matrix schemes that cost nothing
in the limits and were factored again for each Range part, a response cache that did not count
what it kept, and glob patterns tried against every tensor without a bound. The assertions are on
statuses, bodies and counters, never on time.
"""

from __future__ import annotations

import json

import pytest
import requests

from service import create_app
from service.api.cache import MAX_BODY_BYTES, MAX_BYTES
from service.api.errors import MAX_FIELD_ERRORS
from service.core import matrix_cache
from tests.helpers import plan_of
from service.core.selection import MAX_PATTERN_WORK

from ..api.helpers import assert_problem
from .conftest import TIMEOUT, rss_kib, single_worker, start_server, stop_server

DENSE = {"type": "dense", "name": "fc", "in_features": 2, "out_features": 2}


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


def post(client, path, body: bytes | dict, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type="application/json", headers=headers)


def dense_layers(n, width, scheme=None):
    return [{**DENSE, "name": f"l{i}", "in_features": width, "out_features": width,
             **({"scheme": scheme} if scheme else {})} for i in range(n)]


# ------------------------------------------------------------------ lists: the length before the items
@pytest.mark.parametrize("path, body, field, limit", [
    ("/v1/weights", '{"architecture":{"layers":[{"type":"tensor","name":"w","shape":[%s]}]},"seed":1}'
     % ",".join(["0"] * 500_000), "architecture.layers.0.shape", "Length must be between 1 and 8."),
    ("/v1/weights", '{"architecture":{"layers":[%s]},"tensors":[%s]}' % (json.dumps(DENSE), ",".join(['"x"'] * 250_000)),
     "tensors", "Length must be between 1 and 1024."),
    ("/v1/plan", '{"architecture":{"layers":[%s]},"tensors":[%s]}' % (json.dumps(DENSE), ",".join(['1'] * 250_000)),
     "tensors", "Length must be between 1 and 1024."),
    ("/v1/diagnose", '{"architecture":{"layers":[%s]},"schemes":[%s]}' % (json.dumps(DENSE), ",".join(['"nope"'] * 120_000)),
     "schemes", "Length must be between 1 and 8."),
], ids=["shape of 500,000 zeros", "250,000 tensor names", "250,000 bad tensor names", "120,000 diagnose schemes"])
def test_a_list_too_long_is_one_error_not_one_per_item(client, path, body, field, limit):
    r = post(client, path, body.encode())
    problem = assert_problem(r, 422, "invalid-document")
    assert problem["errors"] == {field: [limit]}
    assert len(r.data) < 1000


def test_a_problem_names_at_most_a_bounded_number_of_fields_in_document_order(client):
    layer = {**DENSE, **{f"unknown{i:04d}": i for i in range(3000)}}
    r = post(client, "/v1/weights", {"architecture": {"layers": [layer]}})
    problem = assert_problem(r, 422, "invalid-document")
    assert list(problem["errors"]) == [f"architecture.layers.0.unknown{i:04d}" for i in range(MAX_FIELD_ERRORS)]
    assert problem["errors_omitted"] == 3000 - MAX_FIELD_ERRORS
    assert problem["detail"] == "architecture.layers.0.unknown0000: Unknown field. (and 2999 more fields)"
    assert len(r.data) < 10_000


def test_unknown_fields_are_named_in_document_order_in_every_process(client):
    doc = {"architecture": {"layers": [DENSE]}, "zeta": 1, "alpha": 2, "mid": 3}
    problem = assert_problem(post(client, "/v1/plan", doc), 422, "invalid-document")
    assert list(problem["errors"]) == ["zeta", "alpha", "mid"] and "errors_omitted" not in problem


# ------------------------------------------------------------------ whole matrices cost flops and bytes
def test_many_whole_matrices_are_a_413_naming_max_matrix_flops(client):
    doc = {"architecture": {"layers": dense_layers(24, 2048)}, "scheme": "orthogonal", "format": "safetensors"}
    problem = assert_problem(post(client, "/v1/weights", doc), 413, "limit-exceeded")
    assert problem["limit"] == "max_matrix_flops"
    assert problem["allowed"] == create_app().extensions["weightinit.config"].max_matrix_flops
    assert problem["requested"] > problem["allowed"]


def test_one_whole_matrix_over_the_memory_bound_is_a_413_naming_max_matrix_bytes():
    c = create_app({"max_matrix_bytes": 1 << 20}).test_client()
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [512, 512]}]}, "scheme": "orthogonal"}
    problem = assert_problem(post(c, "/v1/weights", {**doc, "format": "npy"}), 413, "limit-exceeded")
    assert problem["limit"] == "max_matrix_bytes" and problem["allowed"] == 1 << 20


def test_a_range_part_is_held_to_the_whole_matrices_its_bytes_overlap():
    # Two 256 x 256 orthogonal layers; the budget admits one QR, not two: the whole artifact is a 413,
    # a part within one layer's bytes is a 206, a part spanning both is a 413.
    one = plan_of({"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [256, 256]}]},
                      "scheme": "orthogonal"}).selected[0].matrix_work().flops
    c = create_app({"max_matrix_flops": one + one // 2}).test_client()
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "a", "shape": [256, 256]},
                                       {"type": "tensor", "name": "b", "shape": [256, 256]}]},
           "scheme": "orthogonal", "seed": 3, "format": "safetensors"}
    assert assert_problem(post(c, "/v1/weights", doc), 413, "limit-exceeded")["limit"] == "max_matrix_flops"
    whole = create_app().test_client().post("/v1/weights", json=doc).data
    header = 8 + int.from_bytes(whole[:8], "little")
    r = post(c, "/v1/weights", doc, Range=f"bytes={header}-{header + 999}")
    assert r.status_code == 206 and r.data == whole[header:header + 1000]
    r = post(c, "/v1/weights", doc, Range=f"bytes={header}-{len(whole) - 1}")
    assert assert_problem(r, 413, "limit-exceeded")["limit"] == "max_matrix_flops"


def test_the_range_parts_of_one_artifact_factor_each_matrix_once(client):
    doc = {"architecture": {"layers": [{"type": "tensor", "name": "q", "shape": [384, 512]}]},
           "scheme": "orthogonal", "seed": 77, "format": "npy"}
    before = matrix_cache.cache().stats()["draws"]
    whole = post(client, "/v1/weights", doc).data
    parts = [post(client, "/v1/weights", doc, Range=f"bytes={a}-{a + 65535}").data for a in range(0, len(whole), 65536)]
    assert b"".join(parts) == whole
    assert matrix_cache.cache().stats()["draws"] - before == 1


def test_diagnose_counts_the_qr_of_every_orthogonal_scheme(client):
    doc = {"architecture": {"layers": dense_layers(7, 2048)}, "batch": 2,
           "schemes": [{"name": "orthogonal", "gain": 1 + k / 10} for k in range(8)]}
    problem = assert_problem(post(client, "/v1/diagnose", doc), 413, "limit-exceeded")
    assert problem["limit"] == "diagnose_max_cost"


# ------------------------------------------------------------------ the response cache counts every byte
def test_the_response_cache_counts_the_json_bodies_it_keeps():
    a = create_app()
    c = a.test_client()
    cache = a.extensions["weightinit.cache"]
    for seed in range(60):  # ~0.78 MB each: 47 MB of answers, under the per-body ceiling
        r = c.post("/v1/weights", json={"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [250, 260]}]},
                                        "scheme": "he_normal", "seed": seed})
        assert r.status_code == 200 and 700_000 < len(r.data) <= MAX_BODY_BYTES
    held = sum(len(e.body or b"") + e.held for e in cache._items.values())
    kept = [e for e in cache._items.values() if e.json is not None]
    assert kept and all(e.held >= len(e.json[0]) and e.plan is None and e.report is None for e in kept)
    assert cache.stats()["bytes"] == held <= MAX_BYTES


@pytest.mark.slow
def test_a_worker_serving_distinct_json_answers_stays_within_the_cache_bound(tmp_path):
    s = start_server(tmp_path, env={"WEIGHTINIT_WORKERS": "1"})
    try:
        pid = single_worker(s)
        session = requests.Session()

        def ask(seed):
            doc = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [250, 260]}]},
                   "scheme": "he_normal", "seed": seed}
            r = session.post(s.url + "/v1/weights", json=doc, timeout=TIMEOUT)
            assert r.status_code == 200 and len(r.content) > 700_000

        for seed in range(40):  # warm-up: allocator pools, the first entries
            ask(seed)
        warm = rss_kib(pid)
        for seed in range(40, 240):  # 200 more distinct answers, ~156 MB of JSON
            ask(seed)
        grown = (rss_kib(pid) - warm) / 1024
        print(f"\nworker RSS after warm-up {warm / 1024:.1f} MiB, after 200 distinct JSON answers +{grown:.1f} MiB")
        assert grown <= MAX_BYTES / (1 << 20) + 16, grown
    finally:
        stop_server(s)


# ------------------------------------------------------------------ glob patterns
def test_long_glob_patterns_against_many_tensors_are_a_413_naming_max_pattern_work(client):
    layers = [{**DENSE, "name": f"block{i:03d}_linear", "in_features": 4, "out_features": 4} for i in range(500)]
    patterns = [f"*{'?' * 100}*{'?' * 100}*z{k}" for k in range(1023)]
    r = post(client, "/v1/plan", {"architecture": {"layers": layers}, "tensors": ["block000_linear.weight", *patterns]})
    problem = assert_problem(r, 413, "limit-exceeded")
    assert problem["limit"] == "max_pattern_work" and problem["allowed"] == MAX_PATTERN_WORK
    assert problem["requested"] == 1000 * sum(len(p) for p in patterns)


def test_exact_names_cost_no_matching_and_repeats_count_once(client):
    layers = [{**DENSE, "name": f"l{i}"} for i in range(1000)]
    names = [f"l{i}.weight" for i in range(1000)]
    r = post(client, "/v1/plan", {"architecture": {"layers": layers}, "tensors": names[:1024]})
    assert r.status_code == 200 and len(r.json["tensors"]) == 1000
    glob = "l*[13579].bias"
    r = post(client, "/v1/plan", {"architecture": {"layers": layers}, "tensors": [glob] * 1000 + ["l0.weight"]})
    assert r.status_code == 200
    assert [t["name"] for t in r.json["tensors"]] == ["l0.weight"] + [f"l{i}.bias" for i in range(1, 1000, 2)]


def test_the_first_pattern_that_matches_nothing_is_named(client):
    r = post(client, "/v1/plan", {"architecture": {"layers": [DENSE]}, "tensors": ["fc.*", "nope*", "fc.bias", "nope*"]})
    problem = assert_problem(r, 422, "invalid-document")
    assert list(problem["errors"]) == ["tensors.1"]
