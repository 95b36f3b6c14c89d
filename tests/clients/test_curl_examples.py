"""The curl examples (examples/curl/*.sh) against a live gunicorn server: each runs, prints what
it promises, and the sha256 checks they do in the shell pass, and fail on corrupted bytes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .proxy import corrupting_proxy
from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]
CURL_DIR = ROOT / "examples" / "curl"


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("bash", "curl", "jq", "od", "dd", "sha256sum"):
        require(tool, "the curl examples (examples/curl) cannot run")


def script(name: str, url: str, out: Path, *args: str):
    env = {**os.environ, "WEIGHTINIT_URL": url, "OUT_DIR": str(out)}
    return subprocess.run(["bash", str(CURL_DIR / name), *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_json(server, tmp_path):
    r = script("weights-json.sh", server.url, tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "weights.json").read_text())
    assert r.stdout.splitlines()[0] == f"seed 42, numpy {doc['engine']['numpy']}, {doc['totals']['parameters']} parameters"
    for t in doc["tensors"]:
        assert f"  {t['name']} {t['dtype']} " in r.stdout and t["sha256"][:16] in r.stdout


def test_plan(server, tmp_path):
    r = script("plan.sh", server.url, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("6 tensors, 235146 parameters; bytes: npz ")
    assert "  fc1.weight [256,784] he_normal (auto) normal fan_in 784 fan_out 256" in r.stdout
    assert "  fc2.weight [128,256] xavier_uniform (auto) uniform" in r.stdout


def test_npy_checks_the_reported_sha256(server, tmp_path):
    r = script("weights-npy.sh", server.url, tmp_path, str(CURL_DIR / "request.json"), "fc2.weight")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "{'descr': '<f4', 'fortran_order': False, 'shape': (128, 256), }" in r.stdout
    assert "  fc2.weight: sha256 " in r.stdout and r.stdout.rstrip().endswith("OK")


def test_safetensors_checks_every_tensor(server, tmp_path):
    r = script("weights-safetensors.sh", server.url, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" OK\n") == 6 and "MISMATCH" not in r.stdout
    assert "metadata: seed 42, engine weightinit" in r.stdout


def test_safetensors_script_catches_corrupted_bytes(server, tmp_path):
    with corrupting_proxy(server.url) as url:
        r = script("weights-safetensors.sh", url, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.count(" OK\n") == 5
    assert [line.split(":")[0].strip() for line in r.stdout.splitlines() if "MISMATCH" in line] == ["head.bias"]


def test_http_errors_show_the_problem(server, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"architecture": {"layers": []}}))
    r = script("plan.sh", server.url, tmp_path, str(bad))
    assert r.returncode == 1
    assert "POST /v1/plan failed" in r.stderr and '"status":422' in r.stderr.replace(" ", "")


def test_diagnose(server, tmp_path):
    r = script("diagnose.sh", server.url, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    verdicts = [line.split(": ")[-1].split(" from ")[0] for line in r.stdout.splitlines() if not line.startswith("    ")]
    # tanh network: Xavier keeps the signal, N(0, 0.01^2) lets it vanish, N(0, 1) saturates, zeros are symmetric
    assert verdicts == ["healthy", "vanishing", "saturated", "symmetric"], r.stdout
    doc = json.loads((tmp_path / "diagnose.json").read_text())
    assert [x["verdict"] for x in doc["results"]] == verdicts


def test_without_out_dir_the_files_go_to_a_temporary_folder(server, tmp_path):
    """Run from a clone with no OUT_DIR, a script leaves nothing in the current directory: its files go
    to $TMPDIR/weightinit, and stderr says where."""
    cwd, tmp = tmp_path / "clone", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "OUT_DIR"}
    env.update(WEIGHTINIT_URL=server.url, TMPDIR=str(tmp))
    r = subprocess.run(["bash", str(CURL_DIR / "plan.sh")], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert list(cwd.iterdir()) == []
    assert (tmp / "weightinit" / "plan.json").is_file()
    assert r.stderr == f"files in {tmp}/weightinit (set OUT_DIR to choose)\n"
