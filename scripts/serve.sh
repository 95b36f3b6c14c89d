#!/usr/bin/env bash
# Start the service: installs what it needs into .venv, then runs gunicorn on $PORT (8000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/gunicorn" -c "$ROOT/gunicorn.conf.py" 'service:create_app()'
