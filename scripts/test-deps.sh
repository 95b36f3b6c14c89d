#!/usr/bin/env bash
# System and test-only dependencies the suite needs; each installed only when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${WEIGHTINIT_VENV:-$ROOT/.venv}/bin/python"

# Debian packages: command -> package.
declare -A APT=()
missing=()
for cmd in "${!APT[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT[$cmd]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PyTorch (CPU, test-only, for the cross-checks against torch.nn.init); 2.13.0 is a local file here.
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q torch==2.13.0 || echo "test-deps: torch 2.13.0 unavailable; torch cross-checks will be skipped" >&2
fi
