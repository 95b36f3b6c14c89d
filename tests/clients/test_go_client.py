"""The Go client example (examples/go, standard library only, Go 1.19) against a live gunicorn server.

It is vetted, its own unit tests run (`go test`), it is built once, and then it decodes the
engine's values bit for bit in every dtype (float16 subnormals included), revalidates with
If-None-Match, names a corrupted tensor, and prints the problem of a bad document (contract.py).
Without Go it is skipped, saying so, on a developer's machine, and fails under CI
(scripts/test-deps.sh installs Debian's golang-go).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from . import contract
from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]
GO_DIR = ROOT / "examples" / "go"


@pytest.fixture(scope="module")
def go(tmp_path_factory):
    """(the go command, its environment): offline, the local toolchain, no module downloads."""
    exe = require("go", "the Go client example (examples/go) cannot be built")
    tmp = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOWORK": "off"}
    home = os.environ.get("HOME")
    if not (home and os.access(home, os.W_OK)):  # the default build cache lives under $HOME
        env.setdefault("GOCACHE", str(tmp / "cache"))
        env.setdefault("GOPATH", str(tmp / "path"))
    if shutil.which("gcc") is None:  # Go 1.19 does not fall back to pure Go by itself
        env.setdefault("CGO_ENABLED", "0")
    return exe, env, tmp


def go_run(go, *args):
    exe, env, _ = go
    return subprocess.run([exe, *args], cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def binary(go):
    out = go[2] / "weightinit-client"
    r = go_run(go, "build", "-o", str(out), ".")
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture
def client(binary):
    def run(*args):
        return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    return run


def test_go_vet_and_unit_tests(go):
    """go vet, then half floats (all 65536 float16 patterns), .npy, safetensors, SHA-256, Repr-Digest."""
    r = go_run(go, "vet", ".")
    assert r.returncode == 0, r.stdout + r.stderr
    r = go_run(go, "test", "-count=1", ".")
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout + r.stderr


def test_go_sources_are_gofmt_clean(go):
    gofmt = Path(go[0]).resolve().parent / "gofmt"  # beside go in the toolchain's bin
    r = subprocess.run([str(gofmt), "-l", "."], cwd=GO_DIR, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout == "", f"not gofmt-formatted: {r.stdout}{r.stderr}"


class TestGoClient(contract.ClientContract):
    """Bit-exact dumps in every dtype, the 304, a corrupted byte, a problem, usage errors, the built-in example."""
