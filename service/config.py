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

import ipaddress
import os
import re
from dataclasses import dataclass, fields
from typing import Callable, Mapping

#: Binary artifacts of at least 2**29 elements per request must always be allowed.
MIN_BINARY_ELEMENTS_DEFAULT = 1 << 29


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Variable:
    field: str
    env: str
    type: type           # int | str | tuple (a list: with its own parser)
    default: object
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple | None = None
    doc: str = ""
    used_by: str = "app"  # app | gunicorn | engine
    #: A value that is neither an integer nor one word (a list): its own parser, ``parser(variable, raw)``.
    parser: Callable[[Variable, object], object] | None = None

    def parse(self, raw) -> object:
        """A raw value (env string, or a Python value from an override dict) -> a checked value."""
        if self.parser is not None:
            return self.parser(self, raw)
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


#: An origin as a browser sends it in the ``Origin`` header (RFC 6454 serialization), lowercased:
#: http or https, a host name (letters, digits, ``-``, ``_``; dot-separated labels), an IPv4 address
#: or a bracketed IPv6 address, and a port; nothing after.
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
                     r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*)(?::(?P<port>[0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origins(var: Variable, raw) -> tuple[str, ...]:
    """``WEIGHTINIT_CORS_ORIGINS``: comma-separated origins (or a list of them, as an override) -> each
    origin exactly as a browser serializes it in ``Origin`` (lowercase scheme and host, no default port),
    in order, once each; ``("*",)`` for ``*`` (any origin, only when set explicitly); ``()`` when empty
    (CORS off). Anything that is not an origin (a path, even ``/``; a scheme other than http(s);
    ``null``; a wildcard inside a name) stops the service at startup: the allow-list is compared
    exactly, so a near-miss would silently allow nothing."""
    if isinstance(raw, str):
        items = [item.strip() for item in raw.split(",")]
    elif isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        items = [item.strip() for item in raw] or [""]
    else:
        raise ConfigError(f"{var.env} must be a comma-separated list of origins, got {raw!r}")
    if items == [""]:
        return ()
    if "" in items:
        raise ConfigError(f"{var.env} has an empty entry (two commas in a row, or one at an end), got {raw!r}")
    if "*" in items:
        if len(items) > 1:
            raise ConfigError(f"{var.env}: * allows every origin and cannot be combined with others, got {raw!r}")
        return ("*",)
    return tuple(dict.fromkeys(_origin(var, item) for item in items))


def _origin(var: Variable, item: str) -> str:
    if not item.isascii():
        raise ConfigError(f"{var.env}: {item!r} is not ASCII: write an internationalized host name in its "
                          "xn-- (punycode) form, as browsers send it")
    m = _ORIGIN.fullmatch(item.lower())
    if m is None:
        raise ConfigError(f"{var.env}: {item!r} is not an origin: write scheme://host[:port] with scheme http "
                          "or https and nothing after the host or port (no path, not even a final /)")
    scheme, host, port = m.group("scheme"), m.group("host"), m.group("port")
    try:  # addresses as browsers write them: IPv6 compressed, IPv4 without leading zeros
        if host.startswith("["):
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        elif host.replace(".", "").isdigit():
            host = str(ipaddress.IPv4Address(host))
    except ValueError:
        raise ConfigError(f"{var.env}: {item!r} is not an origin: {host} is not an IP address") from None
    number = None if port is None else int(port)
    if number is not None and not 1 <= number <= 65535:
        raise ConfigError(f"{var.env}: {item!r} is not an origin: the port must be 1 to 65535")
    if number == _DEFAULT_PORTS[scheme]:
        number = None  # a browser never sends the scheme's default port
    return f"{scheme}://{host}" + ("" if number is None else f":{number}")


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
    Variable("log_format", "WEIGHTINIT_LOG_FORMAT", str, "text", choices=("text", "json"),
             doc="`text`: one line per request and per message, as gunicorn writes them; `json`: one JSON object "
                 "per access-log and error-log line (request id, method, path, status, bytes, duration, seed, "
                 "fingerprint, time, level)", used_by="gunicorn"),
    Variable("metrics", "WEIGHTINIT_METRICS", str, "on", choices=("on", "off"),
             doc="`on`: `GET /metrics` answers Prometheus's text format, counting every gunicorn worker; `off`: "
                 "no route, nothing measured"),
    Variable("metrics_dir", "WEIGHTINIT_METRICS_DIR", str, "",
             doc="directory where each gunicorn worker keeps its metric files (prometheus-client's multiprocess "
                 "mode), emptied at startup; one per running instance, ideally on a tmpfs; empty = a private "
                 "directory made at startup under the temporary directory and removed at exit",
             used_by="gunicorn"),
    Variable("gen_threads", "WEIGHTINIT_GEN_THREADS", int, 0, 0, 1024,
             doc="threads per process drawing blocks of values; 0 = one per CPU core (read by the engine)",
             used_by="engine"),
    Variable("normals", "WEIGHTINIT_NORMALS", str, "auto", choices=("auto", "numpy"),
             doc="who draws normal values: `auto` = the compiled C sampler when it was built at install, else "
                 "its NumPy reference; `numpy` = the reference always. The bytes are the same either way "
                 "(read by the engine)", used_by="engine"),
    Variable("seeds", "WEIGHTINIT_SEEDS", str, "auto", choices=("auto", "numpy"),
             doc="who computes the seed words of each block's stream: `auto` = the compiled C twin of NumPy's "
                 "`SeedSequence` when it was built at install, else NumPy's; `numpy` = NumPy's always. The bytes "
                 "are the same either way (read by the engine)", used_by="engine"),
    Variable("diagnose_max_batch", "WEIGHTINIT_DIAGNOSE_MAX_BATCH", int, 1024, 2, 4096,
             doc="largest probe `batch` of one POST /v1/diagnose (413 `diagnose_max_batch`; the engine's own "
                 "ceiling is 4096)"),
    Variable("diagnose_max_cost", "WEIGHTINIT_DIAGNOSE_MAX_COST", int, 20_000_000_000, 1, 1 << 50,
             doc="most multiply-adds (forward and backward, all schemes) of one POST /v1/diagnose, estimated from "
                 "the document before anything runs (413 `diagnose_max_cost`); ~2.5e9 per second per core"),
    Variable("diagnose_max_bytes", "WEIGHTINIT_DIAGNOSE_MAX_BYTES", int, 1 << 29, 1 << 20, 1 << 40,
             doc="most working memory of one POST /v1/diagnose in bytes, estimated the same way "
                 "(413 `diagnose_max_bytes`)"),
    Variable("cors_origins", "WEIGHTINIT_CORS_ORIGINS", tuple, (), parser=parse_origins,
             doc="the origins (`scheme://host[:port]`, comma-separated) whose web pages may call the API from a "
                 "browser (CORS), compared exactly; empty = none (CORS off); `*` = any (only when set explicitly)"),
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
    log_format: str
    metrics: str
    metrics_dir: str
    gen_threads: int
    normals: str
    seeds: str
    diagnose_max_batch: int
    diagnose_max_cost: int
    diagnose_max_bytes: int
    cors_origins: tuple[str, ...]

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
