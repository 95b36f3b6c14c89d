"""What the Java and Go client examples must do against a live server, checked the same way for both.

Each client POSTs a request document to ``/v1/weights`` for JSON (the report, with every tensor's
sha256), safetensors and (the report's first tensor alone) .npy; decodes both binary formats
itself; checks each tensor's sha256, dtype and shape against the report and each body against its
``Repr-Digest``; revalidates the safetensors with ``If-None-Match: <ETag>`` (304, no body); and with
``--dump FILE`` writes ``{"reported_sha256": {name: hex}, "formats": {"safetensors": [...], "npy":
[...]}}``, each tensor as engine.py describes.

A test module subclasses ``ClientContract`` as ``Test...`` and defines the ``client`` fixture: a
function that runs the client with the given arguments and returns the ``CompletedProcess``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from .engine import assert_dumped_equal, expected, request
from .proxy import corrupting_proxy

# `in_features` 0: a 422 whose detail names the field.
BAD_DOCUMENT = {"architecture": {"layers": [{"type": "dense", "in_features": 0, "out_features": 2}]}}


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(doc))
    return path


class ClientContract:
    """The tests every HTTP client example passes (see the module docstring)."""

    @pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
    def test_decodes_the_engine_values_bit_exactly(self, client, server, tmp_path, dtype):
        """Every tensor of the safetensors and the .npy equals the engine's bit for bit, all checks pass,
        and the revalidation with the safetensors' real ETag got its 304."""
        doc = request(dtype)
        dump = tmp_path / "dump.json"
        r = client("--url", server.url, "--request", _write(tmp_path, doc), "--dump", dump)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "MISMATCH" not in r.stdout, r.stdout
        assert r.stdout.rstrip().endswith("all tensors match the sha256, dtype and shape of the JSON report"), r.stdout
        want = expected(doc)
        names = list(want)
        assert r.stdout.count("sha256 matches the report") == len(names) + 1, r.stdout  # safetensors, then the npy
        assert r.stdout.count("Repr-Digest matches") == 3, r.stdout  # JSON, safetensors, npy
        assert f"seed {doc['seed']}, scheme auto" in r.stdout
        for name, w in want.items():  # names, shapes and first values are printed
            line = next(line for line in r.stdout.splitlines() if line.strip().startswith(name + " "))
            assert "[" + ", ".join(map(str, w["shape"])) + "]" in line and "sha256 " + w["sha256"][:16] in line, line

        etag = requests.post(server.url + "/v1/weights", json=doc, headers={"Accept": "application/vnd.safetensors"},
                             timeout=60).headers["ETag"]
        assert f"revalidated: If-None-Match {etag} -> 304 Not Modified, no body" in r.stdout, r.stdout

        got = json.loads(dump.read_text())
        assert got["reported_sha256"] == {n: w["sha256"] for n, w in want.items()}
        assert_dumped_equal(got["formats"]["safetensors"], want, names, "safetensors")
        assert_dumped_equal(got["formats"]["npy"], want, names[:1], "npy")


    def test_reports_a_corrupted_artifact(self, client, server, tmp_path):
        """One flipped bit in the safetensors body (the last tensor's last byte): the client names the
        tensor, still checks the .npy, and exits 1. The proxy passes no ETag, so nothing is revalidated."""
        doc = request("float32")
        with corrupting_proxy(server.url) as url:
            r = client("--url", url, "--request", _write(tmp_path, doc))
        assert r.returncode == 1, r.stdout + r.stderr
        names = list(expected(doc))
        lines = r.stdout.splitlines()
        bad = [i for i, line in enumerate(lines) if "MISMATCH" in line]
        assert len(bad) == 1 and "MISMATCH: sha256" in lines[bad[0]], r.stdout
        assert lines[bad[0] - 1].strip().startswith(names[-1] + " "), r.stdout
        assert r.stdout.count("sha256 matches the report") == len(names), r.stdout  # the others and the npy
        assert "no ETag on the safetensors response: nothing to revalidate" in r.stdout
        assert r.stdout.rstrip().endswith("some tensors do not match the JSON report"), r.stdout


    def test_reports_the_problem_of_a_bad_document(self, client, server, tmp_path):
        """An invalid document: the problem's status, title and detail on stderr, exit status 1."""
        problem = requests.post(server.url + "/v1/weights", json=BAD_DOCUMENT, timeout=60).json()
        assert problem["status"] == 422 and "in_features" in problem["detail"]
        r = client("--url", server.url, "--request", _write(tmp_path, BAD_DOCUMENT))
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"HTTP 422 {problem['title']}: {problem['detail']}" in r.stderr, r.stderr


    def test_usage_errors(self, client, tmp_path):
        """Bad arguments or an unreadable request document: exit status 2 and the usage, no request sent."""
        (tmp_path / "broken.json").write_text("[1,")
        for args in (["--bogus"], ["--show"], ["--request", tmp_path / "missing.json"],
                     ["--request", tmp_path / "broken.json"], ["--url", "ftp://example.invalid"]):
            r = client(*args)
            assert r.returncode == 2, (args, r.stdout, r.stderr)
            assert "usage:" in r.stderr, (args, r.stderr)

    def test_runs_its_built_in_example(self, client, server):
        """Without --request: the small MLP the client carries, every check passing."""
        r = client("--url", server.url, "--show", 2)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.rstrip().endswith("all tensors match the sha256, dtype and shape of the JSON report"), r.stdout
        assert "fc1.weight  F32   [8, 16]" in r.stdout and "revalidated: If-None-Match" in r.stdout, r.stdout
