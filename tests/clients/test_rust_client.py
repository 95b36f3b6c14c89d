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

from tests.helpers import GPT2_TINY, LLAMA_TINY

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


# ------------------------------------------------------------------------------ Hugging Face folders
def generate_folder(doc: dict, out: Path) -> None:
    """``python -m service generate doc.json -o DIR/`` (the trailing slash makes it a folder)."""
    req = out.parent / f"{out.name}.request.json"
    req.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "service", "generate", str(req), "-o", f"{out}/"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def folder_order(directory: Path) -> list[str]:
    """The tensor names in the order the reader goes through them: shard by shard, each in data order."""
    names = []
    for shard in sorted(directory.glob("*.safetensors")):
        data = shard.read_bytes()
        n = int.from_bytes(data[:8], "little")
        head = {k: v for k, v in json.loads(data[8:8 + n]).items() if k != "__metadata__"}
        names += sorted(head, key=lambda k: head[k]["data_offsets"])
    return names


HF_FOLDERS = {
    "llama float32, 5 shards": ({**LLAMA_TINY, "max_shard_size": 8000}, 5),
    "gpt2 float16, minimal headers": ({**GPT2_TINY, "max_shard_size": "3KB", "metadata": "minimal"}, 7),
    "llama bfloat16, one file": ({**LLAMA_TINY, "dtype": "bfloat16"}, 1),
    "gpt2 float64, a shard per tensor": ({**GPT2_TINY, "dtype": "float64", "max_shard_size": 1}, 28),
}


@pytest.mark.parametrize("doc, shards", HF_FOLDERS.values(), ids=HF_FOLDERS.keys())
def test_reads_an_hf_folder_through_its_index(reader, tmp_path, doc, shards):
    """Every shard's header, the index's weight_map, the report embedded in the shards (metadata full),
    and every tensor's sha256 against the JSON response: the values are the engine's, bit for bit."""
    generate_folder(doc, tmp_path / "model")
    cli({**doc, "format": "json"}, tmp_path / "w.json")
    r = read(reader, "--report", tmp_path / "w.json", "--dump", tmp_path / "dump.json", tmp_path / "model")
    assert r.returncode == 0, r.stdout + r.stderr
    want = expected({k: v for k, v in doc.items() if k not in ("max_shard_size", "metadata")})
    config = doc["architecture"]["hf_config"]
    where = "model.safetensors" if shards == 1 else f"{shards} shards (index checked)"
    assert f"hf folder, {config['model_type']} {config['architectures'][0]}, {len(want)} tensors in {where}" in r.stdout
    assert ("; seed 0, scheme hf_default" in r.stdout) == (doc.get("metadata") != "minimal")
    assert r.stdout.count("sha256 matches the report") == len(want) and "MISMATCH" not in r.stdout
    names = folder_order(tmp_path / "model")
    assert sorted(names) == sorted(want)
    assert_dumped_equal(json.loads((tmp_path / "dump.json").read_text())["tensors"], want, names, "hf folder")


def test_reads_one_tensor_found_through_the_index(reader, tmp_path):
    doc = {**LLAMA_TINY, "max_shard_size": 8000}
    generate_folder(doc, tmp_path / "model")
    cli({**doc, "format": "json"}, tmp_path / "w.json")
    name = "model.layers.1.self_attn.q_proj.weight"  # a candle-style name
    shard = json.loads((tmp_path / "model" / "model.safetensors.index.json").read_text())["weight_map"][name]
    r = read(reader, "--report", tmp_path / "w.json", "--name", name, "--dump", tmp_path / "one.json",
             tmp_path / "model")
    assert f"  {name} -> {shard}\n" in r.stdout
    assert r.stdout.count("sha256 matches the report") == 1
    want = expected(LLAMA_TINY)
    assert_dumped_equal(json.loads((tmp_path / "one.json").read_text())["tensors"], want, [name], "hf --name")


def _move_in_index(directory: Path) -> None:
    path = directory / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    name = "model.norm.weight"
    index["weight_map"][name] = "model-00001-of-00005.safetensors"
    path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def _flip_last_byte(directory: Path) -> None:
    path = directory / "model-00003-of-00005.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate_a_shard(directory: Path) -> None:
    path = directory / "model-00002-of-00005.safetensors"
    path.write_bytes(path.read_bytes()[:-4])


def _drop_a_shard(directory: Path) -> None:
    (directory / "model-00004-of-00005.safetensors").unlink()


@pytest.mark.parametrize("damage, status, message", [
    (_flip_last_byte, 1, "MISMATCH: sha256"),
    (_move_in_index, 2, "model.norm.weight, which model.safetensors.index.json puts in model-00001-of-00005"),
    (_truncate_a_shard, 2, "model-00002-of-00005.safetensors: tensor"),
    (_drop_a_shard, 2, "model-00004-of-00005.safetensors: No such file"),
])
def test_a_damaged_folder_fails(reader, tmp_path, damage, status, message):
    doc = {**LLAMA_TINY, "max_shard_size": 8000}
    generate_folder(doc, tmp_path / "model")
    cli({**doc, "format": "json"}, tmp_path / "w.json")
    damage(tmp_path / "model")
    r = read(reader, "--report", tmp_path / "w.json", tmp_path / "model")
    assert r.returncode == status and message in r.stdout + r.stderr, r.stdout + r.stderr
    if status == 1:  # the flipped byte is the last tensor's of its shard, reported on that tensor alone
        data = (tmp_path / "model" / "model-00003-of-00005.safetensors").read_bytes()
        n = int.from_bytes(data[:8], "little")
        head = {k: v for k, v in json.loads(data[8:8 + n]).items() if k != "__metadata__"}
        last = max(head, key=lambda k: head[k]["data_offsets"])
        assert r.stdout.count("MISMATCH") == 1
        assert r.stdout.split("MISMATCH")[0].rstrip().splitlines()[-1].strip().startswith(last)
