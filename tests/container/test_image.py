"""Container smoke test: build the image from the repo's Dockerfile, run it on a loopback port,
wait for its HEALTHCHECK, and check that the .npy and safetensors it serves are byte for byte what
the CLI writes for the same request; then stop it (gracefully: exit code 0) and remove it.

Uses docker where a Docker engine answers, else podman (set up here by
shared/tools/container-env.sh, run from scripts/test-deps.sh). Where neither works the test is
skipped with the reason, never passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "weightinit-test"

pytestmark = pytest.mark.slow


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def engine() -> str:
    reasons = []
    if shutil.which("docker"):
        if _works(["docker", "info"]):
            return "docker"
        reasons.append("docker is installed but no Docker engine answers")
    else:
        reasons.append("no docker")
    if shutil.which("podman"):
        if _works(["podman", "info"]):
            return "podman"
        reasons.append("podman is installed but `podman info` fails")
    else:
        reasons.append("no podman (scripts/test-deps.sh sets it up with ../shared/tools/container-env.sh)")
    pytest.skip("no container engine: " + "; ".join(reasons))


def sh(*cmd, timeout=120, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def image(engine):
    fmt = ["--format", "docker"] if engine == "podman" else []  # docker format keeps HEALTHCHECK
    start = time.monotonic()
    sh(engine, "build", *fmt, "-t", IMAGE, ".", timeout=1200)
    seconds = time.monotonic() - start
    size = sh(engine, "image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip()
    print(f"\n{engine} build: {seconds:.1f} s, image {int(size) / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture(scope="module")
def container(engine, image):
    port = free_port()
    name = f"weightinit-smoke-{os.getpid()}"
    extra = ["--health-interval", "2s"] if engine == "docker" else []  # podman: `healthcheck run` below
    sh(engine, "run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
       "-e", "WEIGHTINIT_HOST=127.0.0.1", "-e", "WEIGHTINIT_WORKERS=1", *extra, image)
    info = {"engine": engine, "name": name, "url": f"http://127.0.0.1:{port}", "healthy_after": None}
    try:
        start = time.monotonic()
        while True:
            if engine == "podman":
                healthy = sh("podman", "healthcheck", "run", name, check=False).returncode == 0
            else:
                state = sh("docker", "inspect", "--format", "{{.State.Health.Status}}", name, check=False).stdout
                healthy = state.strip() == "healthy"
            if healthy:
                info["healthy_after"] = time.monotonic() - start
                break
            running = sh(engine, "inspect", "--format", "{{.State.Running}}", name, check=False).stdout.strip()
            if running != "true" or time.monotonic() - start > 90:
                logs = sh(engine, "logs", name, check=False)
                pytest.fail(f"the container never became healthy (running={running}):\n{logs.stdout}\n{logs.stderr}")
            time.sleep(0.5)
        yield info
    finally:
        stop = sh(engine, "stop", "-t", "20", name, check=False, timeout=60)
        info["exit_code"] = sh(engine, "inspect", "--format", "{{.State.ExitCode}}", name, check=False).stdout.strip()
        info["stop"] = stop
        sh(engine, "rm", "-f", name, check=False)


def _doc(dtype: str, **extra) -> dict:
    return {"architecture": {"layers": [
        {"type": "dense", "name": "fc1", "in_features": 64, "out_features": 32, "activation": "relu"},
        {"type": "conv2d", "name": "conv", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "activation": "tanh"},
        {"type": "lstm", "name": "rnn", "input_size": 8, "hidden_size": 16, "scheme": "keras_default"},
    ]}, "scheme": "auto", "seed": 11, "dtype": dtype, **extra}


def _cli(doc: dict, out: Path) -> bytes:
    req = out.with_suffix(".request.json")
    req.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "service", "generate", str(req), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


def test_healthcheck_and_metadata(engine, container):
    assert container["healthy_after"] is not None
    health = requests.get(container["url"] + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    import numpy
    assert health.json()["numpy"] == numpy.__version__, "the image must run the locked NumPy (requirements.lock)"
    inspected = json.loads(sh(engine, "image", "inspect", IMAGE).stdout)[0]
    cfg = inspected["Config"]
    assert cfg["User"] == "10001:10001"
    assert "8000/tcp" in cfg["ExposedPorts"]
    healthcheck = cfg.get("Healthcheck") or inspected.get("Healthcheck")  # docker | podman
    assert healthcheck["Test"][0] == "CMD" and "/healthz" in healthcheck["Test"][-1]  # exec form kept
    assert cfg["Cmd"][0] == "gunicorn"
    uid = sh(engine, "exec", container["name"], "id", "-u").stdout.strip()
    assert uid == "10001"
    compilers = sh(engine, "exec", container["name"], "sh", "-c",
                   "for c in gcc cc c++ g++ clang make ld; do command -v $c; done; ls /opt/venv/bin").stdout.split()
    assert not [c for c in compilers if c.startswith("/")], f"build tools in the runtime image: {compilers}"
    assert "gunicorn" in compilers and not {"pip", "pip3"} & set(compilers), "the venv keeps no installer"
    tests_dir = sh(engine, "exec", container["name"], "python", "-c",
                   "import pathlib, service; p = pathlib.Path(service.__file__).parent; "
                   "print(sorted(x.name for x in p.iterdir() if x.is_dir()))").stdout
    assert "tests" not in tests_dir and "core" in tests_dir


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_safetensors_equals_the_cli(container, tmp_path, dtype):
    doc = _doc(dtype)
    r = requests.post(container["url"] + "/v1/weights", json=doc, headers={"Accept": "application/vnd.safetensors"},
                      timeout=60)
    assert r.status_code == 200, r.text
    expected = _cli(doc, tmp_path / "w.safetensors")
    assert len(r.content) == len(expected) and r.content == expected


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_npy_equals_the_cli(container, tmp_path, dtype):
    doc = _doc(dtype, tensors=["rnn.weight_hh"])
    r = requests.post(container["url"] + "/v1/weights", json=doc, headers={"Accept": "application/x-npy"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/x-npy")
    assert r.content == _cli(doc, tmp_path / "w.npy")


def test_stops_gracefully_on_sigterm(engine, image):
    """`stop` sends SIGTERM: with an exec-form CMD gunicorn is PID 1, gets it and exits 0 at once
    (a shell-form CMD would leave it to the kill after the timeout, exit code 137)."""
    port = free_port()
    name = f"weightinit-stop-{os.getpid()}"
    sh(engine, "run", "-d", "--name", name, "--network", "host", "-e", f"PORT={port}", "-e", "WEIGHTINIT_HOST=127.0.0.1",
       "-e", "WEIGHTINIT_WORKERS=1", IMAGE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, sh(engine, "logs", name, check=False).stderr
            time.sleep(0.3)
        start = time.monotonic()
        sh(engine, "stop", "-t", "30", name, timeout=60)
        took = time.monotonic() - start
        code = sh(engine, "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", f"gunicorn did not exit cleanly on SIGTERM (exit code {code})"
        assert took < 25, f"stop took {took:.1f} s: SIGTERM did not reach gunicorn"
    finally:
        sh(engine, "rm", "-f", name, check=False)
