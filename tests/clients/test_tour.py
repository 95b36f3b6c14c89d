"""README's five-minute tour, run exactly as printed: its shell block, extracted from README.md, against
a live server on 127.0.0.1, from the repository's root, with its files in a temporary folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import requests

from tests.helpers import plan_of, report_of
from tests.markdown import code_blocks, section

from .toolchain import require

ROOT = Path(__file__).resolve().parents[2]


def tour() -> str:
    (block,) = code_blocks(section((ROOT / "README.md").read_text(), "## Five-minute tour"))
    return block


def test_the_tour_runs_as_printed(server, tmp_path):
    for tool in ("bash", "curl", "jq", "cmp"):
        require(tool, "the README's tour cannot run")
    # PYTHONPATH: .venv/bin/weightinit runs this checkout's code even when the venv's editable install
    # is another checkout's (a shared venv); on a fresh clone it changes nothing.
    env = {**os.environ, "WEIGHTINIT_URL": server.url, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", tour()], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()

    # its files are in one new temporary folder, none in the clone
    (folder,) = tmp_path.iterdir()
    assert out[0] == f"tour files in {folder}"
    assert sorted(p.name for p in folder.iterdir()) == ["headers.txt", "offline.safetensors", "request.json",
                                                         "weights.json", "weights.safetensors"]
    doc = report_of(plan_of(json.loads((folder / "request.json").read_text())))
    by_name = {t["name"]: t for t in doc["tensors"]}

    # 1. the plan, from the service, then offline as a table
    assert [line.split()[:5] for line in out[1:5]] == [
        [t["name"], json.dumps(t["shape"], separators=(",", ":")), t["scheme"]["name"], "fan_in", str(t["fan_in"])]
        for t in doc["tensors"]]
    assert [float(line.split()[-1]) for line in out[1:5]] == [t["std"] for t in doc["tensors"]]
    assert out[1].startswith("fc1.weight [256,784] he_normal fan_in 784 std 0.0505")
    assert out[5].startswith("4 tensors, 203530 parameters; seed 42")
    assert out[7].split() == ["tensor", "shape", "scheme", "distribution", "fan_in", "fan_out", "bounds", "std",
                              "warnings"]
    assert [line.split()[0] for line in out[8:12]] == list(by_name)

    # 2. the weights as JSON, and the ETag the next steps use
    weights = json.loads((folder / "weights.json").read_text())
    assert [line.rsplit(" ", 1)[0] for line in out[12:16]] == [
        f"{t['name']} sha256 {t['sha256'][:16]}... first value" for t in weights["tensors"]]
    assert [float(line.rsplit(" ", 1)[1]) for line in out[12:16]] == [_first(t["values"]) for t in weights["tensors"]]
    etag = re.fullmatch(r'(?i)etag: ("[0-9a-f]{64}-json")', out[16])
    assert etag, out[16]

    # 3. safetensors from the service and from the CLI: the same bytes
    assert out[17] == "same bytes"
    assert (folder / "weights.safetensors").read_bytes() == (folder / "offline.safetensors").read_bytes()

    # 4. the 304, with that ETag
    assert out[18] == "304"

    # 5. the explorer is up where the tour says
    assert out[19:] == ["explorer: 200", f"open {server.url}/ in a browser"]
    page = requests.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")


def _first(values):
    while isinstance(values, list):
        values = values[0]
    return values
