"""The offline CLI: generate / plan / schemes; bad input -> one line, exit 2, no traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import orjson
import pytest
import requests

from service.cli import EXIT_STATUSES
from tests.helpers import plan_of
from tests.helpers import artifact_of as encode
from tests.helpers import MLP


def run(*args, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "service", *args], input=stdin, capture_output=True)


@pytest.fixture
def request_file(tmp_path):
    p = tmp_path / "req.json"
    p.write_text(json.dumps({**MLP, "seed": 42}))
    return p


@pytest.mark.parametrize("fmt", ["json", "npz", "safetensors"])
def test_generate_writes_the_encoder_bytes(request_file, tmp_path, fmt):
    out = tmp_path / f"w.{fmt}"
    r = run("generate", str(request_file), "-o", str(out))
    assert r.returncode == 0, r.stderr
    expected = b"".join(bytes(c) for c in encode(plan_of({**MLP, "seed": 42}), fmt).chunks())
    assert out.read_bytes() == expected


def test_generate_npy_to_stdout_with_format(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({**MLP, "tensors": ["fc1.weight"]}))
    r = run("generate", str(p), "-o", "-", "--format", "npy")
    assert r.returncode == 0
    a = np.load(io.BytesIO(r.stdout), allow_pickle=False)
    assert np.array_equal(a, plan_of({**MLP, "tensors": ["fc1.weight"]}).selected[0].generate())


def test_generate_reads_stdin_and_format_field(tmp_path):
    out = tmp_path / "x.bin"
    r = run("generate", "-", "-o", str(out), stdin=json.dumps({**MLP, "format": "npz"}).encode())
    assert r.returncode == 0, r.stderr
    assert np.load(out, allow_pickle=False).files[0] == "manifest"


def test_plan_json_prints_theory_without_values(request_file):
    r = run("plan", "--json", str(request_file))
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["seed"] == 42 and doc["engine"]["bit_generator"] == "PCG64"
    assert [t["name"] for t in doc["tensors"]][:2] == ["fc1.weight", "fc1.bias"]
    assert all("values" not in t for t in doc["tensors"])
    assert doc["totals"]["parameters"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10


def test_plan_json_is_the_body_of_v1_plan(server, request_file):
    """--json: the document POST /v1/plan answers for the same request, indented (its bytes: orjson's)."""
    body = requests.post(server.url + "/v1/plan", data=request_file.read_bytes(),
                         headers={"Content-Type": "application/json"}, timeout=30).content
    r = run("plan", "--json", str(request_file))
    assert r.returncode == 0, r.stderr
    assert r.stdout == orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"


def test_plan_prints_a_table_by_default(request_file):
    r = run("plan", str(request_file))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("6 tensors, 235146 parameters; seed 42, float32, layout torch; bytes: npz ")
    assert lines[2].split() == ["tensor", "shape", "scheme", "distribution", "fan_in", "fan_out", "bounds", "std",
                                "warnings"]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert list(rows) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "head.weight", "head.bias"]
    assert rows["fc1.weight"] == ["fc1.weight", "256x784", "he_normal", "normal", "784", "256", "-", "0.05051", "-"]
    assert rows["fc1.bias"] == ["fc1.bias", "256", "zeros", "constant", "784", "256", "0", "0", "-"]
    assert rows["head.weight"][:7] == ["head.weight", "10x128", "xavier_uniform", "uniform", "128", "10", "±0.2085"]
    # the columns line up: every cell of a column starts where its header does
    starts = [lines[2].index(c) for c in ("shape", "scheme", "bounds", "std")]
    for line in lines[3:]:
        assert all(line[s - 2:s] == "  " and line[s] != " " for s in starts), line


def test_plan_table_lists_warnings_with_their_messages(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"architecture": {"layers": [
        {"type": "dense", "name": "t", "in_features": 100, "out_features": 100, "activation": "tanh"}]},
        "scheme": {"name": "normal", "std": 1}, "bias": False}))
    lines = run("plan", str(p)).stdout.decode().splitlines()
    assert lines[3].split() == ["t.weight", "100x100", "normal", "normal", "100", "100", "-", "1", "exploding"]
    assert lines[4:6] == ["", "warnings:"]
    assert lines[6].startswith("  t.weight: exploding: variance 1 is 100x above the Xavier variance 0.01")


def test_schemes_lists_the_registry():
    r = run("schemes", "--json")
    names = {s["name"] for s in json.loads(r.stdout)}
    assert {"xavier_uniform", "he_normal", "orthogonal", "auto"} <= names
    assert "glorot_uniform" in run("schemes").stdout.decode()


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"architecture": {"layers": [{"type": "dense", "in_features": 0, "out_features": 1}]}}).encode(),
     "architecture.layers.0.in_features"),
    (json.dumps({**MLP, "scheme": {"name": "normal", "std": -1}}).encode(), "scheme.std"),
    (json.dumps({**MLP, "scheme": "nope"}).encode(), "unknown scheme"),
    (json.dumps({**MLP, "tensors": ["zzz"]}).encode(), "tensors.0"),
    (json.dumps([1]).encode(), "JSON object"),
    (b"[" * 100000, "not valid JSON"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, content, needle):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    r = run("generate", str(p), "-o", str(tmp_path / "o.npz"))
    err = r.stderr.decode()
    assert r.returncode == 2
    assert needle in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.npz").exists()


def test_npy_with_several_tensors_is_an_error(request_file, tmp_path):
    r = run("generate", str(request_file), "-o", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and b"npz or safetensors" in r.stderr


def test_unknown_extension(request_file, tmp_path):
    r = run("generate", str(request_file), "-o", str(tmp_path / "x.bin"))
    assert r.returncode == 2 and b"--format" in r.stderr


def test_missing_file(tmp_path):
    r = run("plan", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and b"cannot read" in r.stderr


def test_a_file_that_cannot_be_written_is_one_line_exit_1(request_file, tmp_path):
    r = run("generate", str(request_file), "-o", str(tmp_path / "missing" / "w.npz"))
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == f"weightinit: generate failed: cannot write {tmp_path}/missing/w.npz: " \
                                "No such file or directory\n"


@pytest.mark.parametrize("command", [[], ["generate"], ["plan"], ["schemes"], ["fetch"]])
def test_every_help_lists_the_exit_statuses(command):
    r = run(*command, "--help")
    assert r.returncode == 0 and r.stdout.decode().rstrip().endswith(EXIT_STATUSES), r.stdout
