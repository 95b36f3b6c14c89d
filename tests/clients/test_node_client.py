"""The Node.js client example (examples/node) against a live gunicorn server.

It must decode every tensor of the safetensors, npz and npy responses to exactly the engine's
values (bit for bit, float32, float64, float16 and bfloat16, subnormals included), check them
against the sha256 the JSON response reported, and notice when the bytes are wrong. Its types are
generated from openapi.yaml by openapi-typescript and must be up to date and type-check.

Needs node and `npm ci` in examples/node (scripts/test-deps.sh does it).
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from .engine import assert_dumped_equal, expected, request
from .proxy import corrupting_proxy
from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "examples" / "node"


@pytest.fixture(scope="module")
def node():
    exe = require("node", "the Node client example (examples/node) cannot run")
    if not (NODE_DIR / "node_modules" / "npyjs").is_dir():
        pytest.fail("examples/node/node_modules is missing: run scripts/test-deps.sh (npm ci in examples/node)")
    return exe


def run(cmd, *, timeout=120, cwd=NODE_DIR):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_generated_types_are_up_to_date(node, tmp_path):
    """types/api.d.ts is what `npm run generate-types` makes from the current openapi.yaml."""
    script = json.loads((NODE_DIR / "package.json").read_text())["scripts"]["generate-types"]
    args = shlex.split(script)
    assert args[0] == "openapi-typescript" and "--output" in args, script
    args[args.index("--output") + 1] = str(tmp_path / "api.d.ts")
    r = run([str(NODE_DIR / "node_modules" / ".bin" / args[0]), *args[1:]])
    assert r.returncode == 0, r.stderr
    fresh = (tmp_path / "api.d.ts").read_text()
    committed = (NODE_DIR / "types" / "api.d.ts").read_text()
    assert "export interface components" in fresh and "RequestDocument" in fresh
    assert committed == fresh, ("examples/node/types/api.d.ts is stale: run `npm run generate-types` in "
                                "examples/node after changing openapi.yaml, and commit the result")


def test_client_type_checks_against_the_generated_types(node):
    r = run([str(NODE_DIR / "node_modules" / ".bin" / "tsc"), "--project", "tsconfig.json"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_node_unit_tests(node):
    r = run([node, "--test", "test/"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "# fail 0" in r.stdout and "# pass 0" not in r.stdout, r.stdout


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_client_decodes_the_engine_values_bit_exactly(node, server, tmp_path, dtype):
    doc = request(dtype)
    (tmp_path / "request.json").write_text(json.dumps(doc))
    dump = tmp_path / "dump.json"
    r = run([node, "client.js", "--url", server.url, "--request", str(tmp_path / "request.json"), "--dump", str(dump)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all tensors match the sha256, dtype, shape and values of the JSON response" in r.stdout
    want = expected(doc)
    names = list(want)
    for name in names:  # it prints every tensor with its shape
        assert f"{name} " in r.stdout
    got = json.loads(dump.read_text())
    assert got["reported_sha256"] == {n: w["sha256"] for n, w in want.items()}
    assert_dumped_equal(got["formats"]["safetensors"], want, names, "safetensors")
    assert_dumped_equal(got["formats"]["npz"], want, names, "npz")
    assert_dumped_equal(got["formats"]["npy"], want, names[:1], "npy")


def test_client_reports_a_corrupted_artifact(node, server, tmp_path):
    """One flipped bit in the safetensors bytes: the client says which tensor and exits 1."""
    doc = request("float32")
    (tmp_path / "request.json").write_text(json.dumps(doc))
    with corrupting_proxy(server.url) as url:
        r = run([node, "client.js", "--url", url, "--request", str(tmp_path / "request.json")])
    assert r.returncode == 1, r.stdout + r.stderr
    last = list(expected(doc))[-1]  # the flipped byte belongs to the last tensor in the file
    mismatches = [line for line in r.stdout.splitlines() if "MISMATCH" in line]
    assert mismatches and all("sha256" in m or "does not round" in m for m in mismatches), r.stdout
    assert "some tensors do not match the JSON response" in r.stdout
    section = r.stdout.split("safetensors:\n", 1)[1].split("npz:\n", 1)[0]
    assert f"  {last} " in section and "MISMATCH: sha256" in section
    assert "MISMATCH" not in r.stdout.split("npz:\n", 1)[1]  # the other formats were not touched


def test_client_reports_http_errors(node, server, tmp_path):
    """An invalid document: the problem's title and detail, exit status 1."""
    bad = {"architecture": {"layers": [{"type": "dense", "in_features": 0, "out_features": 2}]}}
    path = tmp_path / "bad-request.json"
    path.write_text(json.dumps(bad))
    r = run([node, "client.js", "--url", server.url, "--request", str(path)])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "HTTP 422" in r.stderr and "/v1/plan" in r.stderr
