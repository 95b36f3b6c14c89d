# Sourced by serve.sh and test.sh: a virtual environment in .venv with the project installed.
# Idempotent and quiet when everything is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WEIGHTINIT_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
# Reinstall only when pyproject.toml or requirements.lock changed since the last install.
# requirements.lock (scripts/lock.py) pins the runtime dependencies: the venv runs exactly the
# versions the container image ships, so CLI and image artifacts are byte-for-byte the same.
# Two optional C modules (setup.py): the engine's normal sampler (service/core/_ziggurat.c, the
# same bytes as its NumPy reference, ~3x faster) and the JSON float printer
# (service/output/_f32text.c, orjson's exact text without the GIL). Without a C compiler they
# are skipped and NumPy / orjson do the work; as root on Debian the compiler is installed first.
if ! command -v cc >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; } >/dev/null 2>&1 ||
    echo "bootstrap: could not install gcc; normals will be drawn by the NumPy reference (same bytes, slower)" >&2
fi
stamp="$VENV/.weightinit-installed"
inputs=("$ROOT/scripts/bootstrap.sh" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/service/core/_ziggurat.c"
        "$ROOT/service/output/_f32text.c")
constraints=()
if [ -f "$ROOT/requirements.lock" ]; then
  inputs+=("$ROOT/requirements.lock")
  constraints=(--constraint "$ROOT/requirements.lock")
fi
want="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)-${WEIGHTINIT_EXTRAS:-}"
built=("$ROOT"/service/core/_ziggurat*.so)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || { command -v cc >/dev/null 2>&1 && [ ! -f "${built[0]}" ]; }; then
  # The build backend first, at the lock's version: a new venv comes with ensurepip's setuptools
  # (65.5 on Python 3.11), which the lock does not list and which cannot build this pyproject.toml.
  # The project is then built with it (no isolated build environment), as the Dockerfile builds it.
  "$PY" -m pip install -q setuptools "${constraints[@]}"
  "$PY" -m pip install -q --no-build-isolation -e "$ROOT${WEIGHTINIT_EXTRAS:+[$WEIGHTINIT_EXTRAS]}" "${constraints[@]}"
  echo "$want" >"$stamp"
fi
