#!/usr/bin/env bash
# System and test-only dependencies the suite needs; each installed only when missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${WEIGHTINIT_VENV:-$ROOT/.venv}/bin/python"

# Debian packages: command -> package.
declare -A APT=()
# Node.js and npm for the Node client example (examples/node): the machine image ships Node 20;
# Debian's packages are the fallback.
APT[node]=nodejs
APT[npm]=npm
# wrk (benchmarks/run.py: small-request throughput; tests/hardening/test_load_faults.py: 20 s of mixed load) and nginx (tests/scale/test_nginx.py: the load
# balancer of deploy/nginx.conf in front of two gunicorn instances, started by hand, no daemon).
APT[wrk]=wrk
APT[nginx]=nginx
# jq, for the curl examples (examples/curl) and their test.
APT[jq]=jq
# Headless Chromium and its WebDriver for the browser tests (tests/browser: the explorer, and
# examples/browser across origins; selenium drives Debian's build, no browser is downloaded).
APT[chromium]=chromium
APT[chromedriver]=chromium-driver
# The JDK (javac, java) for the Java client example (examples/java, tests/clients/test_java_client.py).
APT[javac]=openjdk-17-jdk-headless
APT[java]=openjdk-17-jdk-headless
# Go 1.19 for the Go client example (examples/go, tests/clients/test_go_client.py).
APT[go]=golang-go
# cargo and rustc for the Rust client example (examples/rust, tests/clients/test_rust_client.py);
# a rustup toolchain already on PATH is used as it is.
APT[cargo]=cargo
APT[rustc]=rustc
# Prometheus (its server and promtool, both in Debian's `prometheus`) for tests/ops/test_prometheus.py: the
# test starts its own on a free loopback port, scraping a two-worker gunicorn (the package's service is not used).
APT[prometheus]=prometheus
APT[promtool]=prometheus
missing=()
for cmd in "${!APT[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT[$cmd]}")
done
# gcc and its sanitizer runtimes, for the builds of the C twins with -fsanitize=address,undefined
# (tests/sanitizers.py); gcc prints the bare name when it has no libasan.so.
asan="$(gcc -print-file-name=libasan.so 2>/dev/null || true)"
if [ "${asan#/}" = "$asan" ] || [ ! -e "$asan" ]; then
  missing+=(gcc libc6-dev libasan8 libubsan1)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PyTorch (CPU, test-only, for the cross-checks against torch.nn.init); 2.13.0 is a local file here.
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q torch==2.13.0 || echo "test-deps: torch 2.13.0 unavailable; torch cross-checks will be skipped" >&2
fi

# transformers (test-only): the Hugging Face families (service/core/hf) and hf_default are checked against
# the release they follow (service.core.layers.base.TRANSFORMERS): names, shapes, loading, init statistics.
if ! "$PY" -c "import transformers, sys; sys.exit(transformers.__version__ != '5.23.0')" 2>/dev/null; then
  "$PY" -m pip install -q transformers==5.23.0
fi

# The recipes' reference implementations (test-only, tests/core/recipes): megatron-core, mup, torchscale,
# lsuv and timm at the releases the tests name. --no-deps: their own requirements would replace the CPU
# torch above (mup and timm ask for torchvision, torchscale pins timm 0.6.13); what they import at run
# time is listed here instead. torchvision: PyPI has CUDA builds only, whose C++ operators cannot load
# with the CPU torch; timm and torchscale use its Python modules alone (tests/references.py).
refs=(megatron-core==0.16.1 mup==1.0.0 torchscale==0.3.0 lsuv==0.3.0 timm==1.0.31
      fairscale==0.4.0 huggingface_hub pyyaml tqdm pandas seaborn pillow)
if ! "$PY" - "${refs[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(r.split("==")[0]) != r.split("==")[1] if "==" in r else not version(r) for r in sys.argv[1:]))
PY
then
  "$PY" -m pip install -q --no-deps "${refs[@]}"
fi
# torchvision beside site-packages, not in it: transformers imports it whenever it is importable.
tv_dir="$("$PY" -c 'import sys; print(sys.prefix)')/reference-torchvision"
if [ ! -f "$tv_dir/torchvision-0.28.0.dist-info/METADATA" ]; then
  rm -rf "$tv_dir"
  "$PY" -m pip install -q --no-deps --target "$tv_dir" torchvision==0.28.0
fi

# The Node client example's packages (examples/node/package-lock.json), installed with `npm ci`
# only when the lock file changed since the last install.
node_dir="$ROOT/examples/node"
if [ -f "$node_dir/package-lock.json" ] && command -v npm >/dev/null 2>&1; then
  want="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$node_dir/node_modules/.weightinit-installed"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    if (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
      echo "$want" >"$stamp"
    else
      echo "test-deps: npm ci failed in examples/node; the Node client tests will fail" >&2
    fi
  fi
fi

# Containers: no Docker engine here, but podman works once shared/tools/container-env.sh has set
# it up (podman, runc, a containers.conf, local stand-ins for the base images since no image
# registry is reachable). It lies beside the clone (../shared); idempotent, and quick when ready.
container_env="$(dirname "$ROOT")/shared/tools/container-env.sh"
if [ -f "$container_env" ] && ! docker info >/dev/null 2>&1; then
  (cd "$ROOT" && bash "$container_env" Dockerfile docker-compose.yml) ||
    echo "test-deps: container-env.sh failed; the container smoke test will be skipped" >&2
fi
