"""schemathesis 4.x fuzzes a real gunicorn server (loopback) against openapi.yaml: every operation,
every default check (server errors, status codes, content types, response headers and schemas,
negative data rejected, positive data accepted, unsupported methods, ...), a fixed seed, at least
MAX_EXAMPLES (200) fuzzed cases per operation that takes a body, PARAMETER_CASES for one that
takes parameters only (hypothesis may end a small space early), 25 per CORS preflight. Zero failures.

How it is bounded (two cores, shared with the rest of the suite):

- The server runs the shipped configuration with lower *limits* (environment variables, see
  FUZZ_LIMITS): every generated request is cheap (a few ms), and a request over a limit is a
  413 that the spec documents, decided before any work. The binary element limit cannot go
  below 2^29 (a product guarantee), but generated binary requests are either tiny or refused.
- Phases: examples, coverage and fuzzing. Coverage enumerates every boundary of every keyword
  and, for the three POST operations (a request document with dozens of scheme objects and
  fifteen layer types), yields 15,000-40,000 cases each, minutes on two cores: it is off for
  those three in tests/hardening/schemathesis.toml (they get their examples and >= 200 fuzzed
  cases, positive and negative) and on for every other operation. Stateful testing has nothing to
  chain in this stateless API. The README shows the deeper run with every phase everywhere.
- No ``--max-time``: in schemathesis 4.x it is a budget the run always spends (fuzzing repeats
  until it is gone), and a budget shorter than one pass would cut operations below 200 cases.
  One deterministic pass it is, bounded by RUN_TIMEOUT (the subprocess is killed past it).
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

from .conftest import HERE, start_server, stop_server

pytestmark = pytest.mark.slow

SEED = 20261125
MAX_EXAMPLES = 200
RUN_TIMEOUT = 900  # a bound for a hung run, not a speed target: generation over the hf_config schemas is CPU-bound
#: Limits of the fuzzed server (the spec documents each 413): requests stay cheap.
FUZZ_LIMITS = {
    "WEIGHTINIT_MAX_JSON_ELEMENTS": "262144",
    # the schema's examples include a real-size hf_config (Llama-2-7B): under the default binary limit
    # (2^37, a 70B model) its weights would stream for minutes; a 413 is the answer worth fuzzing
    "WEIGHTINIT_MAX_BINARY_ELEMENTS": "536870912",  # the configurable minimum, 2^29
    "WEIGHTINIT_MAX_TORCH_ELEMENTS": "1048576",
    "WEIGHTINIT_DIAGNOSE_MAX_COST": "100000000",
    "WEIGHTINIT_DIAGNOSE_MAX_BYTES": "67108864",
}


def schemathesis_cli() -> Path:
    exe = Path(sys.executable).parent / "schemathesis"
    if not exe.exists():
        pytest.fail("schemathesis is not installed: it is in the `dev` extra (pip install -e '.[dev]')")
    return exe


def preflight_examples() -> int:
    """The fuzzed cases asked of each CORS preflight (OPTIONS) operation: schemathesis.toml's."""
    settings = tomllib.loads((HERE / "schemathesis.toml").read_text())
    (n,) = [op["generation"]["max-examples"] for op in settings["operations"] if op.get("include-method") == "OPTIONS"]
    return n


#: Fuzzed cases asked of an operation whose only input is parameters (no body): hypothesis may end such
#: an operation early once its small space (GET /v1/schemes/{name}: an enum path parameter and two
#: optional headers) gives only repeats: 16-24 of 200 cases in whole runs, 200 when run alone.
PARAMETER_CASES = 10


def operations() -> dict[str, str]:
    """'METHOD /path' -> what input the operation takes: "body", "parameters" or "" (none)."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method.lower() in ("get", "post", "put", "patch", "delete", "options"):
                out[f"{method.upper()} {path}"] = ("body" if op.get("requestBody") else
                                                   "parameters" if op.get("parameters") or item.get("parameters")
                                                   else "")
    return out


def test_schemathesis_finds_nothing(tmp_path):
    exe = schemathesis_cli()
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"version 4\.", version), version
    (tmp_path / "server").mkdir()
    s = start_server(tmp_path / "server", env=FUZZ_LIMITS)  # the shipped worker count: one per core
    report_dir = tmp_path / "report"
    cmd = [str(exe), "--config-file", str(HERE / "schemathesis.toml"), "run", str(ROOT / "openapi.yaml"),
           "--url", s.url, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
           "--phases", "examples,coverage,fuzzing", "--generation-database", "none", "--no-color",
           "--request-timeout", "120", "--report", "ndjson", "--report-dir", str(report_dir)]
    try:
        try:
            r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"schemathesis ran over {RUN_TIMEOUT} s:\n{(e.stdout or b'')[-5000:]!r}")
        summary = r.stdout[r.stdout.find("===") - 1:] if "===" in r.stdout else r.stdout[-6000:]
        print(f"\n$ {' '.join(cmd)}\n{summary}")
        assert r.returncode == 0, r.stdout[-20000:] + r.stderr[-5000:]
        assert "No issues found" in r.stdout
        err = s.error_log()
        assert "Traceback" not in err, err[-5000:]
    finally:
        stop_server(s)

    # Every operation was exercised, and each that takes input with >= MAX_EXAMPLES fuzzed cases (a
    # preflight: its own, smaller count).
    (ndjson,) = report_dir.glob("*.ndjson")
    cases: dict[tuple[str, str], int] = collections.Counter()
    for line in ndjson.read_text().splitlines():
        event = json.loads(line)
        if "ScenarioFinished" in event:
            e = event["ScenarioFinished"]
            cases[(e["phase"], e["recorder"]["label"])] += len(e["recorder"].get("cases", {}))
    ops = operations()
    preflights = preflight_examples()
    fuzzed = {label: n for (phase, label), n in cases.items() if phase == "fuzzing"}
    print("fuzzed cases per operation: " + ", ".join(f"{k} {v}" for k, v in sorted(fuzzed.items())))
    assert set(fuzzed) == set(ops), set(ops) ^ set(fuzzed)
    for label, takes in ops.items():
        # an operation without parameters or body has exactly one distinct request
        wanted = (preflights if label.startswith("OPTIONS ") else MAX_EXAMPLES if takes == "body"
                  else PARAMETER_CASES) if takes else 1
        assert fuzzed[label] >= wanted, (label, fuzzed[label])
