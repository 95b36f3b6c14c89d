"""The Rust client example (examples/rust, standard library only) on real artifacts.

It reads .safetensors and .npy files written by the CLI and fetched over HTTP, checks every
tensor's sha256, dtype and shape against the JSON report, and dumps what it decoded: the stored
bits and the decoded values must equal the engine's arrays bit for bit. Without cargo it is
skipped, saying so, on a developer's machine, and fails under CI (scripts/test-deps.sh installs
Debian's cargo and rustc, 1.63: the example must build with them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .engine import assert_dumped_equal, expected, request
from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]
RUST_DIR = ROOT / "examples" / "rust"


@pytest.fixture(scope="module")
def cargo(tmp_path_factory):
    rustup = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin" / "cargo"
    exe = require("cargo", "the Rust client example (examples/rust) cannot be built", rustup)
    target = tmp_path_factory.mktemp("rust-target")
    env = {**os.environ, "CARGO_TARGET_DIR": str(target), "PATH": f"{Path(exe).parent}:{os.environ.get('PATH', '')}"}
    return exe, env, target


@pytest.fixture(scope="module")
def reader(cargo):
    exe, env, target = cargo
    r = subprocess.run([exe, "build", "--offline", "--release", "--quiet"], cwd=RUST_DIR, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    binary = target / "release" / "weightinit-read"
    assert binary.is_file()
    return binary


def read(binary, *args, timeout=60):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def cli(doc: dict, out: Path) -> None:
    req = out.with_suffix(".request.json")
    req.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "service", "generate", str(req), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_rust_unit_tests(cargo):
    """SHA-256 known answers, the JSON parser, npy/safetensors parsing and half-float decoding."""
    exe, env, _ = cargo
    r = subprocess.run([exe, "test", "--offline", "--quiet"], cwd=RUST_DIR, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test result: ok." in r.stdout and " 0 failed" in r.stdout


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_reads_cli_safetensors_bit_exactly(reader, tmp_path, dtype):
    doc = request(dtype)
    cli(doc, tmp_path / "w.safetensors")
    cli(doc, tmp_path / "w.json")
    r = read(reader, "--report", tmp_path / "w.json", "--dump", tmp_path / "dump.json", tmp_path / "w.safetensors")
    assert r.returncode == 0, r.stdout + r.stderr
    want = expected(doc)
    assert r.stdout.count("sha256 matches the report") == len(want), r.stdout
    assert f"seed {doc['seed']}, scheme auto" in r.stdout
    for name, w in want.items():  # names, shapes and the first values are printed
        line = next(line for line in r.stdout.splitlines() if line.strip().startswith(name + " "))
        assert "[" + ", ".join(map(str, w["shape"])) + "]" in line
    assert_dumped_equal(json.loads((tmp_path / "dump.json").read_text())["tensors"], want, list(want), "safetensors")


def _fetch(url: str, body: dict, accept: str, out: Path) -> None:
    """curl, as the README shows it (requests where curl is missing)."""
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-fsS", "-X", "POST", "-H", "Content-Type: application/json", "-H",
                            f"Accept: {accept}", "--data-binary", json.dumps(body), "-o", str(out), url],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    else:
        resp = requests.post(url, json=body, headers={"Accept": accept}, timeout=60)
        resp.raise_for_status()
        out.write_bytes(resp.content)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_reads_npy_and_safetensors_fetched_over_http(reader, server, tmp_path, dtype):
    doc = request(dtype)
    one = {**doc, "tensors": ["tiny"]}  # a .npy holds one tensor; `tiny` has float16 subnormals
    _fetch(server.url + "/v1/weights", one, "application/x-npy", tmp_path / "tiny.npy")
    _fetch(server.url + "/v1/weights", one, "application/json", tmp_path / "tiny.json")
    _fetch(server.url + "/v1/weights", doc, "application/vnd.safetensors", tmp_path / "all.safetensors")
    _fetch(server.url + "/v1/weights", doc, "application/json", tmp_path / "all.json")
    want = expected(doc)

    r = read(reader, "--report", tmp_path / "tiny.json", "--dump", tmp_path / "npy.json", tmp_path / "tiny.npy")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("sha256 matches the report") == 1
    assert_dumped_equal(json.loads((tmp_path / "npy.json").read_text())["tensors"], want, ["tiny"], "npy")

    r = read(reader, "--report", tmp_path / "all.json", "--dump", tmp_path / "st.json", tmp_path / "all.safetensors")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_dumped_equal(json.loads((tmp_path / "st.json").read_text())["tensors"], want, list(want), "safetensors")


def test_detects_corruption_and_wrong_reports(reader, tmp_path):
    doc = request("bfloat16")
    cli(doc, tmp_path / "w.safetensors")
    cli(doc, tmp_path / "w.json")
    names = list(expected(doc))
    data = bytearray((tmp_path / "w.safetensors").read_bytes())
    data[-1] ^= 0x80  # the last tensor's last element
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    r = read(reader, "--report", tmp_path / "w.json", tmp_path / "bad.safetensors")
    assert r.returncode == 1, r.stdout
    assert r.stdout.count("MISMATCH") == 1 and r.stdout.count("sha256 matches the report") == len(names) - 1
    assert r.stdout.split("MISMATCH")[0].rstrip().splitlines()[-1].strip().startswith(names[-1])

    other = {**doc, "seed": doc["seed"] + 1}  # a report of another request
    cli(other, tmp_path / "other.json")
    r = read(reader, "--report", tmp_path / "other.json", tmp_path / "w.safetensors")
    assert r.returncode == 1 and "MISMATCH: sha256" in r.stdout

    (tmp_path / "trunc.safetensors").write_bytes(bytes(data[:-3]))
    r = read(reader, tmp_path / "trunc.safetensors")
    assert r.returncode == 2 and "past the data" in r.stderr
    r = read(reader)
    assert r.returncode == 2 and "usage" in r.stderr
