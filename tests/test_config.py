"""service/config.py: typed configuration from the environment, overrides, clear errors;
gunicorn.conf.py reads it; the README documents every variable."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app
from service.config import MIN_BINARY_ELEMENTS_DEFAULT, VARIABLES, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults():
    cfg = load_config(environ={})
    assert cfg.port == 8000 and cfg.host == "0.0.0.0"
    assert cfg.max_json_elements == 1 << 22
    assert cfg.max_binary_elements >= 1 << 29
    assert cfg.cache_max_age == 31_536_000
    assert cfg.workers == 0 and cfg.threads >= 1


def test_environment_is_parsed_and_typed():
    cfg = load_config(environ={"PORT": "9001", "WEIGHTINIT_MAX_JSON_ELEMENTS": " 1_000 ", "WEIGHTINIT_LOG_LEVEL": "WARNING",
                               "WEIGHTINIT_MAX_LAYERS": ""})
    assert cfg.port == 9001 and cfg.max_json_elements == 1000 and cfg.log_level == "warning"
    assert cfg.max_layers == 1000  # empty means unset


def test_overrides_by_field_or_variable_name_win_over_the_environment():
    cfg = load_config({"max_layers": 7, "WEIGHTINIT_MAX_TENSORS": "9"}, environ={"WEIGHTINIT_MAX_LAYERS": "3"})
    assert cfg.max_layers == 7 and cfg.max_tensors == 9


@pytest.mark.parametrize("env, fragment", [
    ({"PORT": "eighty"}, "PORT must be an integer"),
    ({"PORT": "70000"}, "PORT must be an integer <= 65535"),
    ({"WEIGHTINIT_MAX_LAYERS": "0"}, "WEIGHTINIT_MAX_LAYERS must be an integer >= 1"),
    ({"WEIGHTINIT_MAX_BINARY_ELEMENTS": str(MIN_BINARY_ELEMENTS_DEFAULT - 1)}, "WEIGHTINIT_MAX_BINARY_ELEMENTS must be an integer >= 536870912"),
    ({"WEIGHTINIT_LOG_LEVEL": "loud"}, "WEIGHTINIT_LOG_LEVEL must be one of"),
    ({"WEIGHTINIT_HOST": "a b"}, "WEIGHTINIT_HOST must be a non-empty word"),
    ({"WEIGHTINIT_TIMEOUT": "1.5"}, "WEIGHTINIT_TIMEOUT must be an integer"),
])
def test_bad_environment_values_name_the_variable(env, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(environ=env)


@pytest.mark.parametrize("overrides, fragment", [
    ({"max_lyers": 3}, "unknown configuration key 'max_lyers'"),
    ({"max_layers": True}, "WEIGHTINIT_MAX_LAYERS must be an integer"),
    ({"max_layers": 2.0}, "WEIGHTINIT_MAX_LAYERS must be an integer"),
    ({"max_binary_elements": 1000}, "WEIGHTINIT_MAX_BINARY_ELEMENTS must be an integer >= 536870912"),
])
def test_bad_overrides(overrides, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(overrides, environ={})


@pytest.mark.parametrize("raw, origins", [
    ("", ()),
    ("   ", ()),
    ("*", ("*",)),
    (" * ", ("*",)),
    ("https://notebook.example.org", ("https://notebook.example.org",)),
    ("HTTPS://Notebook.Example.ORG", ("https://notebook.example.org",)),            # as browsers send it
    ("https://a.example:443, http://a.example:80", ("https://a.example", "http://a.example")),  # default ports
    ("http://127.0.0.1:5173,http://localhost:5173", ("http://127.0.0.1:5173", "http://localhost:5173")),
    ("http://[0:0:0:0:0:0:0:1]:8080", ("http://[::1]:8080",)),
    ("https://b.example, https://a.example, https://b.example", ("https://b.example", "https://a.example")),
    ("https://my_service.internal:08443", ("https://my_service.internal:8443",)),
    (["https://a.example", "http://b.example:81"], ("https://a.example", "http://b.example:81")),  # an override list
])
def test_cors_origins_are_normalized_as_browsers_send_them(raw, origins):
    cfg = load_config({"cors_origins": raw}, environ={}) if isinstance(raw, list) else \
        load_config(environ={"WEIGHTINIT_CORS_ORIGINS": raw})
    assert cfg.cors_origins == origins


@pytest.mark.parametrize("raw, fragment", [
    ("https://a.example/", "'https://a.example/' is not an origin: write scheme://host[:port]"),
    ("https://a.example/app", "is not an origin"),
    ("a.example", "is not an origin"),
    ("null", "'null' is not an origin"),
    ("file://", "is not an origin"),
    ("ftp://a.example", "is not an origin"),
    ("https://*.example.org", "is not an origin"),
    ("https://user@a.example", "is not an origin"),
    ("https://a.example?x=1", "is not an origin"),
    ("https://a.example:0", "the port must be 1 to 65535"),
    ("https://a.example:65536", "the port must be 1 to 65535"),
    ("http://127.0.0.01", "127.0.0.01 is not an IP address"),
    ("http://[::g]", "is not an origin"),
    ("https://bücher.example", "is not ASCII: write an internationalized host name in its xn-- (punycode) form"),
    ("https://a.example,", "WEIGHTINIT_CORS_ORIGINS has an empty entry"),
    ("https://a.example,,https://b.example", "has an empty entry"),
    ("*, https://a.example", "* allows every origin and cannot be combined with others"),
])
def test_bad_cors_origins_stop_the_service_naming_the_variable(raw, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)) as e:
        load_config(environ={"WEIGHTINIT_CORS_ORIGINS": raw})
    assert str(e.value).startswith("WEIGHTINIT_CORS_ORIGINS")


def test_create_app_checks_its_config_at_startup(monkeypatch):
    with pytest.raises(ConfigError):
        create_app({"max_layers": -1})
    monkeypatch.setenv("WEIGHTINIT_MAX_TENSORS", "lots")
    with pytest.raises(ConfigError, match="WEIGHTINIT_MAX_TENSORS"):
        create_app()


def test_gunicorn_conf_reads_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("WEIGHTINIT_THREADS", "6")
    monkeypatch.delenv("WEIGHTINIT_WORKERS", raising=False)
    monkeypatch.delenv("WEIGHTINIT_HOST", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["bind"] == "0.0.0.0:8123"
    assert conf["workers"] == (os.cpu_count() or 1)
    assert conf["worker_class"] == "gthread" and conf["threads"] == 6
    assert conf["accesslog"] == "-" and "x-request-id" in conf["access_log_format"]
    assert conf["timeout"] >= 60 and conf["graceful_timeout"] >= 30 and conf["reload"] is False
    monkeypatch.setenv("WEIGHTINIT_WORKERS", "3")
    monkeypatch.setenv("WEIGHTINIT_HOST", "::1")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["workers"] == 3 and conf["bind"] == "[::1]:8123"


def test_gunicorn_stops_at_startup_on_a_bad_variable():
    env = {**os.environ, "WEIGHTINIT_MAX_LAYERS": "lots", "PORT": "1"}
    r = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "service:create_app()"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("weightinit: configuration error: WEIGHTINIT_MAX_LAYERS must be an integer >= 1, "
                                "got 'lots'")


def test_readme_documents_every_variable_with_its_default():
    readme = (ROOT / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([A-Z_]+)` \| (`[^`]*`|\(empty\))", readme, re.M)}
    assert set(rows) == {v.env for v in VARIABLES}
    for v in VARIABLES:
        assert rows[v.env] == ("(empty)" if v.default in ("", ()) else f"`{v.default}`"), v.env


def test_gunicorn_conf_sets_up_metrics_and_logs_without_touching_this_process(monkeypatch, tmp_path):
    """Reading gunicorn.conf.py sets nothing: gunicorn applies raw_env in its master before it imports the
    app (prometheus-client picks its multiprocess mode at import), and makes the directory in on_starting."""
    for name in ("WEIGHTINIT_METRICS", "WEIGHTINIT_METRICS_DIR", "WEIGHTINIT_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    environ = dict(os.environ)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert dict(os.environ) == environ
    (directory,) = [v.split("=", 1)[1] for v in conf["raw_env"] if v.startswith("PROMETHEUS_MULTIPROC_DIR=")]
    assert directory.endswith(f"weightinit-metrics-{os.getpid()}") and not os.path.exists(directory)
    assert "logger_class" not in conf  # gunicorn's own: the text format
    monkeypatch.setenv("WEIGHTINIT_METRICS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("WEIGHTINIT_LOG_FORMAT", "json")
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["raw_env"] == [f"PROMETHEUS_MULTIPROC_DIR={tmp_path / 'm'}"]
    assert conf["logger_class"] == "service.api.logs.JsonLogger"
    monkeypatch.setenv("WEIGHTINIT_METRICS", "off")
    assert "raw_env" not in runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_stops_at_startup_when_the_metrics_directory_is_unusable(tmp_path):
    (tmp_path / "a-file").write_text("")
    env = {**os.environ, "WEIGHTINIT_METRICS_DIR": str(tmp_path / "a-file"), "PORT": "1"}
    r = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "service:create_app()"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (f"weightinit: configuration error: WEIGHTINIT_METRICS_DIR "
                                                 f"{tmp_path / 'a-file'} cannot hold the metrics: File exists")
