"""The built wheel ships openapi.yaml (a symlink in the repository) and an installed copy
serves it, with the docs, from wherever it is installed; its generator (service/openapi) runs there too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = r"""
import sys
import service
assert service.__file__.startswith(sys.argv[1]), service.__file__
from service import create_app
c = create_app().test_client()
spec = c.get("/openapi.yaml")
assert spec.status_code == 200, spec.status
sys.stdout.buffer.write(spec.get_data())
assert c.get("/openapi.json").status_code == 200
assert c.get("/docs/swagger-ui-bundle.js").status_code == 200
"""


@pytest.mark.slow
def test_wheel_ships_and_serves_openapi_yaml(tmp_path):
    assert (ROOT / "service" / "openapi.yaml").resolve() == (ROOT / "openapi.yaml").resolve()
    # Build from a copy (symlink kept), so the in-tree build/ of setuptools never touches the repository.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "openapi.yaml"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "service", src / "service", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert (src / "service" / "openapi.yaml").is_symlink()
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(src)], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    (wheel,) = wheels.glob("weightinit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("service/openapi.yaml") == (ROOT / "openapi.yaml").read_bytes()
        names = set(z.namelist())
    assert {"service/api/app.py", "service/config.py", "service/limits.py",
            "service/openapi/template.yaml"} <= names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert not (site / "service" / "openapi.yaml").is_symlink()
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run([sys.executable, "-c", CHECK, str(site)], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == (ROOT / "openapi.yaml").read_bytes()
    # the generator runs from the installed copy too, and agrees with the file it ships
    shipped = site / "service" / "openapi.yaml"
    r = subprocess.run([sys.executable, "-m", "service.openapi", "--check", "--output", str(shipped)], env=env,
                       cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
