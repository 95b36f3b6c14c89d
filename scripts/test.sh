#!/usr/bin/env bash
# Run the whole test suite: installs what it needs (system packages, Python packages into
# .venv, npm packages), then runs pytest, slow tests included. Exit code = pytest's.
set -euo pipefail
export WEIGHTINIT_EXTRAS=dev
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
bash "$ROOT/scripts/test-deps.sh"
exec "$PY" -m pytest "$@"
