# weightinit: the HTTP service (gunicorn + Flask) in a slim, non-root runtime image.
#
#   docker build -t weightinit .          # or: podman build --format docker -t weightinit .
#   docker run --rm -p 8000:8000 weightinit
#
# Two stages: `build` makes a virtual environment in /opt/venv with the exact versions of
# requirements.lock and the project's wheel; `runtime` copies only that venv and
# gunicorn.conf.py onto the same slim base (no compilers, no pip, no build tools).
# Configuration is environment variables only (README "Configuration"); the image sets:
#   PORT=8000                 gunicorn binds 0.0.0.0:$PORT (WEIGHTINIT_HOST) and the healthcheck follows it
#   WEIGHTINIT_WORKERS        unset = one worker per CPU the container sees; set it to the CPU limit
# Base image: pinned by tag (Debian 12 "bookworm", CPython 3.11.14); both stages use the same one,
# so the venv's interpreter symlink resolves in the runtime stage.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# A C compiler for the two optional C modules (setup.py): the engine's normal sampler and the JSON
# float printer. Build stage only: the runtime stage gets the compiled modules, not gcc.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: rebuilt only when requirements.lock changes.
# Every package has a manylinux wheel, so nothing of theirs is compiled.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: --requirement requirements.lock

# The project itself, built with the locked setuptools already in the venv (no download); then
# the installers leave the venv, and so do NumPy's and SciPy's own test suites (~50 MB).
# (-I: the check imports the installed package, not the sources in the working directory.)
COPY pyproject.toml setup.py README.md openapi.yaml ./
COPY service ./service
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
 && /opt/venv/bin/python -m pip uninstall --yes setuptools pip \
 && find /opt/venv/lib/python3*/site-packages/numpy /opt/venv/lib/python3*/site-packages/scipy \
         -depth -type d -name tests -exec rm -rf {} + \
 && /opt/venv/bin/python -I -c "import service, numpy; from service.core import normals; from service.output import floattext; assert normals.BACKEND == floattext.BACKEND == 'c', 'C modules not built'; print('weightinit', service.ENGINE_VERSION, 'numpy', numpy.__version__, 'C modules built')"


FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="weightinit" \
      org.opencontainers.image.description="Seeded, reproducible neural-network initial weights over HTTP, with their theory" \
      org.opencontainers.image.licenses="MIT"

# A fixed, unprivileged user with no login shell and no home directory.
RUN groupadd --gid 10001 weightinit \
 && useradd --uid 10001 --gid weightinit --no-log-init --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin weightinit

COPY --from=build /opt/venv /opt/venv
COPY gunicorn.conf.py /app/gunicorn.conf.py

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# Exec form, no shell and no curl in a slim image: the venv's Python asks /healthz on $PORT and
# exits 1 on an error or a status other than 200. Written without spaces on purpose: podman's
# Docker-compatible API (docker compose against podman) splits health-check arguments on spaces.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "__import__('sys').exit(__import__('urllib.request').request.urlopen('http://127.0.0.1:%s/healthz'%__import__('os').environ.get('PORT','8000'),timeout=4).status!=200)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM directly (graceful shutdown of in-flight streams).
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "service:create_app()"]
