# Sourced by the example scripts: where the service is, where files go, and a curl that fails
# with the server's problem+json body on any HTTP error.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
URL="${WEIGHTINIT_URL:-http://127.0.0.1:8000}"
# Files go to $OUT_DIR, by default a folder of the temporary directory: never the current one.
OUT="${OUT_DIR:-${TMPDIR:-/tmp}/weightinit}"
mkdir -p "$OUT"
[ -n "${OUT_DIR:-}" ] || echo "files in $OUT (set OUT_DIR to choose)" >&2

post() { # post PATH ACCEPT BODY-FILE OUTPUT-FILE
  curl --silent --show-error --fail-with-body -X POST "$URL$1" \
    -H 'Content-Type: application/json' -H "Accept: $2" --data-binary @"$3" -o "$4" ||
    { echo "POST $1 failed:" >&2; cat "$4" >&2; echo >&2; exit 1; }
}

check() { # check NAME GOT WANT
  if [ "$2" = "$3" ]; then echo "  $1: sha256 $2 OK"; else echo "  $1: sha256 $2 != reported $3 MISMATCH"; return 1; fi
}
