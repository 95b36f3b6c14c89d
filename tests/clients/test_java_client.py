"""The Java client example (examples/java, JDK 17 only: java.net.http, its own JSON, .npy and
safetensors readers) against a live gunicorn server.

It is compiled once with javac (warnings are errors), its own unit tests run, and then it decodes
the engine's values bit for bit in every dtype (float16 subnormals included), revalidates with
If-None-Match, names a corrupted tensor, and prints the problem of a bad document (contract.py).
Without a JDK it is skipped, saying so, on a developer's machine, and fails under CI
(scripts/test-deps.sh installs openjdk-17-jdk-headless).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from . import contract
from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]
JAVA_DIR = ROOT / "examples" / "java"


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    """javac of src/ and test/ into a fresh directory: (the java launcher, the class path)."""
    why = "the Java client example (examples/java) cannot be built"
    javac, java = require("javac", why), require("java", why)
    out = tmp_path_factory.mktemp("java-classes")
    sources = sorted(str(p) for p in JAVA_DIR.rglob("*.java"))
    r = subprocess.run([javac, "-Xlint:all,-serial", "-Werror", "-d", str(out), *sources], capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    return java, out


@pytest.fixture
def client(classes):
    java, out = classes

    def run(*args):
        return subprocess.run([java, "-cp", str(out), "weightinit.Client", *map(str, args)], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
    return run


def test_java_unit_tests(classes):
    """Half floats (all 65536 float16 patterns), JSON, .npy, safetensors, SHA-256, Repr-Digest."""
    java, out = classes
    r = subprocess.run([java, "-cp", str(out), "weightinit.ReadersTest"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.rstrip().endswith(" checks passed, 0 failed"), r.stdout + r.stderr


class TestJavaClient(contract.ClientContract):
    """Bit-exact dumps in every dtype, the 304, a corrupted byte, a problem, usage errors, the built-in example."""
