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
stamp="$VENV/.weightinit-installed"
inputs=("$ROOT/pyproject.toml")
constraints=()
if [ -f "$ROOT/requirements.lock" ]; then
  inputs+=("$ROOT/requirements.lock")
  constraints=(--constraint "$ROOT/requirements.lock")
fi
want="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)-${WEIGHTINIT_EXTRAS:-}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$PY" -m pip install -q -e "$ROOT${WEIGHTINIT_EXTRAS:+[$WEIGHTINIT_EXTRAS]}" "${constraints[@]}"
  echo "$want" >"$stamp"
fi
