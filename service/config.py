"""Typed configuration from environment variables, checked once at startup.

Every variable is declared once in ``VARIABLES`` (name, type, default, bounds, meaning): the
parser, ``gunicorn.conf.py``, the README's configuration table and its test all read it.
A bad value stops the service at startup with one line naming the variable::

    weightinit: configuration error: WEIGHTINIT_MAX_LAYERS must be an integer >= 1, got 'lots'

``create_app(config)`` takes a dict of overrides keyed by field name (``max_json_elements``)
or variable name (``WEIGHTINIT_MAX_JSON_ELEMENTS``), checked the same way (tests use it).
This module imports nothing heavy: gunicorn.conf.py reads it before any worker starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

#: Binary artifacts of at least 2**29 elements per request must always be allowed.
MIN_BINARY_ELEMENTS_DEFAULT = 1 << 29


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Variable:
    field: str
    env: str
    type: type           # int | str
    default: object
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple | None = None
    doc: str = ""
    used_by: str = "app"  # app | gunicorn | engine

    def parse(self, raw) -> object:
        """A raw value (env string, or a Python value from an override dict) -> a checked value."""
        if self.type is int:
            if isinstance(raw, bool):
                raise ConfigError(f"{self.env} must be an integer, got {raw!r}")
            if isinstance(raw, str):
                text = raw.strip().replace("_", "")
                try:
                    value = int(text, 10)
                except ValueError:
                    raise ConfigError(f"{self.env} must be an integer"
                                      f"{f' >= {self.minimum}' if self.minimum is not None else ''}, got {raw!r}") from None
            elif isinstance(raw, int):
                value = raw
            else:
                raise ConfigError(f"{self.env} must be an integer, got {raw!r}")
            if self.minimum is not None and value < self.minimum:
                raise ConfigError(f"{self.env} must be an integer >= {self.minimum}, got {raw!r}")
            if self.maximum is not None and value > self.maximum:
                raise ConfigError(f"{self.env} must be an integer <= {self.maximum}, got {raw!r}")
            return value
        if not isinstance(raw, str):
            raise ConfigError(f"{self.env} must be a string, got {raw!r}")
        value = raw.strip().lower() if self.choices else raw.strip()
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.env} must be one of {', '.join(self.choices)}, got {raw!r}")
        if not value or any(c.isspace() for c in value):
            raise ConfigError(f"{self.env} must be a non-empty word, got {raw!r}")
        return value


VARIABLES: tuple[Variable, ...] = (
    Variable("port", "PORT", int, 8000, 1, 65535, doc="TCP port gunicorn listens on", used_by="gunicorn"),
    Variable("host", "WEIGHTINIT_HOST", str, "0.0.0.0", doc="address gunicorn binds (`127.0.0.1`: this machine only)",
             used_by="gunicorn"),
    Variable("max_body_bytes", "WEIGHTINIT_MAX_BODY_BYTES", int, 1 << 20, 64, 1 << 30,
             doc="largest request body accepted, in bytes (413 `max_body_bytes` above it)"),
    Variable("max_layers", "WEIGHTINIT_MAX_LAYERS", int, 1000, 1, 10_000,
             doc="most layers in one request document (413 `max_layers`)"),
    Variable("max_tensors", "WEIGHTINIT_MAX_TENSORS", int, 65_536, 1, 1_000_000,
             doc="most tensors one architecture may define (413 `max_tensors`); the default admits mixture-of-experts "
                 "models (DeepSeek-V3 has ~46k tensors); a plan costs ~0.5 ms of CPU per tensor"),
    Variable("max_json_elements", "WEIGHTINIT_MAX_JSON_ELEMENTS", int, 1 << 22, 1, 1 << 40,
             doc="most values (selected elements) in one JSON response of /v1/weights (413 `max_json_elements`); "
                 "JSON is ~3x larger than binary and built in memory"),
    Variable("max_binary_elements", "WEIGHTINIT_MAX_BINARY_ELEMENTS", int, 1 << 37, MIN_BINARY_ELEMENTS_DEFAULT, 1 << 40,
             doc="most values in one npy/npz/safetensors/hf response (413 `max_binary_elements`); streamed in bounded "
                 "memory; the default admits a 70B model whole (~1.4e8 values per second per worker: minutes of "
                 "CPU); a Range part is held to it alone, so larger models come in parts; at least 2^29"),
    Variable("max_torch_elements", "WEIGHTINIT_MAX_TORCH_ELEMENTS", int, 1 << 25, 1, 1 << 40,
             doc="most values replayed for one `rng: torch` request: every tensor up to the last selected one, since "
                 "PyTorch's stream is sequential (413 `max_torch_elements`); ~1 s per 50M uniform, ~7 s per 50M normal"),
    Variable("max_matrix_flops", "WEIGHTINIT_MAX_MATRIX_FLOPS", int, 1 << 38, 1, 1 << 50,
             doc="most floating-point operations of the whole-matrix tensors (orthogonal's QR, sparse's sort, "
                 "identity, dirac) one request draws; a Range request counts the tensors its bytes overlap "
                 "(413 `max_matrix_flops`); the default admits one orthogonal tensor of the largest size, 4096 x 4096"),
    Variable("max_matrix_bytes", "WEIGHTINIT_MAX_MATRIX_BYTES", int, 640 << 20, 1 << 20, 1 << 40,
             doc="most working memory of drawing one whole-matrix tensor, in bytes (413 `max_matrix_bytes`); the "
                 "default admits a 4096 x 4096 orthogonal tensor (its Gaussian, Q and R in float64)"),
    Variable("matrix_cache_bytes", "WEIGHTINIT_MATRIX_CACHE_BYTES", int, 1 << 27, 0, 1 << 40,
             doc="bytes of drawn whole-matrix tensors each process keeps, so that the Range parts of one artifact "
                 "draw (and factor) each matrix once; 0 = keep none (read by the engine)", used_by="engine"),
    Variable("digest_max_bytes", "WEIGHTINIT_DIGEST_MAX_BYTES", int, 1 << 23, 0, 1 << 30,
             doc="binary artifacts up to this size are built in memory first so that they carry `Repr-Digest` "
                 "(sha-256); larger ones stream without it (JSON always has it); a Range part up to this size "
                 "carries `Content-Digest`, which `weightinit fetch` requires of every part; 0 = never for binary"),
    Variable("cache_max_age", "WEIGHTINIT_CACHE_MAX_AGE", int, 31_536_000, 0, 1 << 31,
             doc="`max-age` of the `Cache-Control` sent with plans and weights (seconds); outputs are immutable"),
    Variable("workers", "WEIGHTINIT_WORKERS", int, 0, 0, 256,
             doc="gunicorn worker processes; 0 = one per CPU core", used_by="gunicorn"),
    Variable("threads", "WEIGHTINIT_THREADS", int, 4, 1, 256,
             doc="request threads per worker (gthread pool): the most concurrent requests a worker serves",
             used_by="gunicorn"),
    Variable("timeout", "WEIGHTINIT_TIMEOUT", int, 120, 10, 86_400,
             doc="seconds a worker may stay silent before the master restarts it (streams do not count: "
                 "gthread workers keep beating while their threads send)", used_by="gunicorn"),
    Variable("graceful_timeout", "WEIGHTINIT_GRACEFUL_TIMEOUT", int, 60, 1, 86_400,
             doc="seconds in-flight requests (large streams) get to finish on shutdown or reload", used_by="gunicorn"),
    Variable("keepalive", "WEIGHTINIT_KEEPALIVE", int, 5, 0, 3600,
             doc="seconds an idle keep-alive connection is held open", used_by="gunicorn"),
    Variable("io_timeout", "WEIGHTINIT_IO_TIMEOUT", int, 30, 1, 3600,
             doc="seconds a connection may make no progress (request headers or body that stop arriving, a "
                 "response the client stops reading) before it is closed and its thread freed "
                 "(`SO_RCVTIMEO`/`SO_SNDTIMEO`)", used_by="gunicorn"),
    Variable("log_level", "WEIGHTINIT_LOG_LEVEL", str, "info", choices=("debug", "info", "warning", "error", "critical"),
             doc="gunicorn error-log level (the access log always goes to stdout)", used_by="gunicorn"),
    Variable("gen_threads", "WEIGHTINIT_GEN_THREADS", int, 0, 0, 1024,
             doc="threads per process drawing blocks of values; 0 = one per CPU core (read by the engine)",
             used_by="engine"),
    Variable("normals", "WEIGHTINIT_NORMALS", str, "auto", choices=("auto", "numpy"),
             doc="who draws normal values: `auto` = the compiled C sampler when it was built at install, else "
                 "its NumPy reference; `numpy` = the reference always. The bytes are the same either way "
                 "(read by the engine)", used_by="engine"),
    Variable("diagnose_max_batch", "WEIGHTINIT_DIAGNOSE_MAX_BATCH", int, 1024, 2, 4096,
             doc="largest probe `batch` of one POST /v1/diagnose (413 `diagnose_max_batch`; the engine's own "
                 "ceiling is 4096)"),
    Variable("diagnose_max_cost", "WEIGHTINIT_DIAGNOSE_MAX_COST", int, 20_000_000_000, 1, 1 << 50,
             doc="most multiply-adds (forward and backward, all schemes) of one POST /v1/diagnose, estimated from "
                 "the document before anything runs (413 `diagnose_max_cost`); ~2.5e9 per second per core"),
    Variable("diagnose_max_bytes", "WEIGHTINIT_DIAGNOSE_MAX_BYTES", int, 1 << 29, 1 << 20, 1 << 40,
             doc="most working memory of one POST /v1/diagnose in bytes, estimated the same way "
                 "(413 `diagnose_max_bytes`)"),
)
_BY_FIELD = {v.field: v for v in VARIABLES}
_BY_ENV = {v.env: v for v in VARIABLES}


@dataclass(frozen=True)
class Config:
    port: int
    host: str
    max_body_bytes: int
    max_layers: int
    max_tensors: int
    max_json_elements: int
    max_binary_elements: int
    max_torch_elements: int
    max_matrix_flops: int
    max_matrix_bytes: int
    matrix_cache_bytes: int
    digest_max_bytes: int
    cache_max_age: int
    workers: int
    threads: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    io_timeout: int
    log_level: str
    gen_threads: int
    normals: str
    diagnose_max_batch: int
    diagnose_max_cost: int
    diagnose_max_bytes: int

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def limits(self) -> dict:
        """The request limits, as published in problem details and the README."""
        return {k: getattr(self, k) for k in ("max_body_bytes", "max_layers", "max_tensors", "max_json_elements",
                                              "max_binary_elements", "max_torch_elements", "max_matrix_flops", "max_matrix_bytes",
                                              "diagnose_max_batch", "diagnose_max_cost",
                                              "diagnose_max_bytes")}

    def diagnose_limits(self) -> dict:
        """The limits of POST /v1/diagnose, keyed as ``service.core.diagnose.check_limits`` takes them."""
        return {"max_batch": self.diagnose_max_batch, "max_cost": self.diagnose_max_cost,
                "max_bytes": self.diagnose_max_bytes}


assert {f.name for f in fields(Config)} == set(_BY_FIELD), "every Config field needs a Variable and vice versa"


def load_config(overrides: Mapping | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The configuration: defaults, then environment variables, then ``overrides``.

    Raises ConfigError naming the first bad variable (or unknown override key)."""
    environ = os.environ if environ is None else environ
    values = {}
    for v in VARIABLES:
        raw = environ.get(v.env)
        values[v.field] = v.default if raw is None or raw.strip() == "" else v.parse(raw)
    for key, raw in (overrides or {}).items():
        var = _BY_FIELD.get(key) or _BY_ENV.get(key)
        if var is None:
            raise ConfigError(f"unknown configuration key {key!r} (known: {', '.join(_BY_FIELD)})")
        values[var.field] = var.parse(raw)
    return Config(**values)
