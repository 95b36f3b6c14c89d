"""What /docs offers to run: Swagger UI's "Try it out" -> "Execute" sends an operation's default
request unchanged (the first request-body example, the path parameters' examples, the first 200
media type as Accept, and every parameter that has an example pre-filled).

- Every default request answers 2xx in well under 100 KB (a 2.4 MB default answer froze the page),
  except the two spec documents, whose answer is this document (the page shows them cut).
- No optional parameter has an example to pre-fill: every request from the page would carry it.
- Each response example is what the service answers to the request example of the same name.
- Every example is named for what it shows.
"""

from __future__ import annotations

import math

#: "Well under 100 KB" for every default answer.
DEFAULT_ANSWER_MAX = 64 * 1024
#: Their answer is this document: /docs shows it cut (tests/browser/test_docs.py).
THE_DOCUMENT = ("/openapi.yaml", "/openapi.json")
#: Its answer grows with the traffic the process has seen (one sample per label set), not with a
#: request: every earlier test's requests are in it.
TRAFFIC = ("/metrics",)


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op


def parameters(spec, op):
    for p in op.get("parameters", []):
        yield spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p


def request_examples(op) -> dict:
    """{name: request body} of an operation, the default (the one Swagger UI picks) first."""
    if "requestBody" not in op:
        return {}
    media = op["requestBody"]["content"]["application/json"]
    if "examples" in media:
        return {name: ex["value"] for name, ex in media["examples"].items()}
    return {"example": media["example"]}


def default_request(spec, path, op, body_name=None) -> tuple[str, dict, object]:
    """(url, headers, JSON body) of what "Execute" sends unchanged."""
    url, headers = path, {}
    for p in parameters(spec, op):
        if "example" in p:
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", str(p["example"]))
            elif p["in"] == "header":
                headers[p["name"]] = p["example"]
    accept = next(iter(op["responses"]["200"].get("content", {})), None)
    bodies = request_examples(op)
    body = bodies[body_name] if body_name else next(iter(bodies.values()), None)
    if isinstance(body, dict) and "format" in body:
        accept = "*/*"  # as /docs sends a body that names its format (service/static/docs/init.js)
    if accept:
        headers["Accept"] = accept
    return url, headers, body


def test_every_default_request_answers_small(client, spec_dict):
    sizes = {}
    for path, method, op in operations(spec_dict):
        url, headers, body = default_request(spec_dict, path, op)
        r = client.open(url, method=method.upper(), json=body, headers=headers)
        assert 200 <= r.status_code < 300, (method, url, r.status_code, r.get_data()[:300])
        sizes[f"{method.upper()} {url}"] = len(r.get_data())
        r.close()
    assert len(sizes) == sum(1 for _ in operations(spec_dict))
    small = {k: n for k, n in sizes.items() if k.split(" ", 1)[1] not in THE_DOCUMENT + TRAFFIC}
    assert all(n <= DEFAULT_ANSWER_MAX for n in small.values()), sizes
    assert sizes["POST /v1/weights"] < 4096        # the JSON of a 3 -> 2 layer, not 2.4 MB


def test_no_optional_parameter_is_prefilled(spec_dict):
    for path, method, op in operations(spec_dict):
        for p in parameters(spec_dict, op):
            if not p.get("required"):
                assert not {"example", "examples"} & set(p), (path, p["name"])
                assert not {"example", "examples", "default"} & set(p.get("schema", {})), (path, p["name"])


def test_every_required_parameter_has_an_example(spec_dict):
    for path, method, op in operations(spec_dict):
        for p in parameters(spec_dict, op):
            if p.get("required"):
                assert "example" in p, (path, p["name"])


def close(a, b, where="") -> None:
    """a == b, floats within 1e-9 relative (diagnose's float64 sums may round differently with the BLAS)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), where
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (where, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b) if isinstance(b, dict) else b)
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{where}.{i}")
    else:
        assert a == b, (where, a, b)


def without_numpy(doc):
    """The document with NumPy's version blanked (the examples were recorded with one)."""
    if isinstance(doc, dict):
        return {k: "*" if k == "numpy" else without_numpy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [without_numpy(v) for v in doc]
    return doc


def test_response_examples_are_the_services_answers(client, spec_dict):
    examples = spec_dict["components"]["examples"]
    checked = []
    for path, method, op in operations(spec_dict):
        media = op["responses"]["200"].get("content", {}).get("application/json", {})
        shown = {name: ex for name, ex in media.get("examples", {}).items()}
        if "example" in media:
            shown["example"] = {"value": media["example"]}
        bodies = request_examples(op)
        for name, ex in shown.items():
            value = examples[ex["$ref"].rsplit("/", 1)[1]]["value"] if "$ref" in ex else ex["value"]
            url, headers, body = default_request(spec_dict, path, op, name if name in bodies else None)
            r = client.open(url, method=method.upper(), json=body, headers=headers)
            assert r.status_code == 200, (path, name)
            close(without_numpy(value), without_numpy(r.get_json()), f"{method} {path} {name}")
            checked.append((path, name))
    assert {("/v1/plan", "small"), ("/v1/weights", "small"), ("/v1/diagnose", "small"),
            ("/v1/schemes/{name}", "he_normal"), ("/healthz", "example")} <= set(checked)


def test_examples_are_named_for_what_they_show(spec_dict):
    summaries = [ex.get("summary", "") for _, _, op in operations(spec_dict)
                 for media in op.get("requestBody", {}).get("content", {}).values()
                 for ex in media.get("examples", {}).values()]
    assert len(summaries) >= 6 and all(summaries)
    assert not [s for s in summaries if "issue" in s.lower()]
    assert len(set(summaries)) == len(summaries)
