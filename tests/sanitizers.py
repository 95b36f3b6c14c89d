"""The C twins built with -fsanitize=address,undefined, and Python code run against such a build.

``build`` compiles one .c file as setup.py does (its FLAGS, less the optimisation level) plus the
sanitizers, into a shared library; ``run`` runs Python code in a subprocess that loads it, with
the ASan runtime preloaded (a Python interpreter is not built with it), so that every NumPy buffer
comes from ASan's malloc, with a poisoned zone after its end; ``assert_clean`` fails on a nonzero
exit or any sanitizer report. Without gcc or its sanitizer runtime the tests skip, except under CI,
where scripts/test-deps.sh installs them and their absence fails.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
#: What a sanitizer writes when it finds something (ASan, LSan, UBSan with and without stack traces).
REPORTS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:")


def setup_flags() -> list[str]:
    """setup.py's FLAGS (the FP flags the bytes depend on), without its -O level."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FLAGS" for t in node.targets):
            return [f for f in ast.literal_eval(node.value) if not f.startswith("-O")]
    raise AssertionError("setup.py has no FLAGS")


def asan_runtime() -> str | None:
    """gcc's libasan.so, or None (no gcc, or no sanitizer runtime installed)."""
    if shutil.which("gcc") is None:
        return None
    name = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return name if os.path.isabs(name) and os.path.exists(name) else None


def require_toolchain() -> str:
    runtime = asan_runtime()
    if runtime is None:
        message = "gcc with libasan (Debian: gcc, libasan8) is needed; scripts/test-deps.sh installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return runtime


def build(source: Path, out_dir: Path) -> Path:
    out = out_dir / (source.stem + ".sanitized.so")
    subprocess.run(["gcc", "-shared", "-fPIC", *setup_flags(), *SANITIZE, "-o", str(out), str(source), "-lm"],
                   check=True, capture_output=True, timeout=300)
    return out


def run(code: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "LD_PRELOAD": require_toolchain(),
           "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:strict_string_checks=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def assert_clean(result: subprocess.CompletedProcess) -> None:
    reports = [r for r in REPORTS if r in result.stderr]
    assert result.returncode == 0 and not reports, (result.returncode, reports, result.stderr[-6000:])
