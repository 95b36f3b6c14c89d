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
# Reinstall only when pyproject.toml changed since the last install.
stamp="$VENV/.weightinit-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)-${WEIGHTINIT_EXTRAS:-}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$PY" -m pip install -q -e "$ROOT${WEIGHTINIT_EXTRAS:+[$WEIGHTINIT_EXTRAS]}"
  echo "$want" >"$stamp"
fi
