"""Safe by default: no debug anywhere it ships, no traceback in any response, a request id in
every access-log line, ``nosniff`` on every response, a strict Content-Security-Policy on the
HTML pages, and nothing from a request reaching a filesystem path, a shell or pickle."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from service import create_app
from service.api.app import REQUEST_ID
from tests.conftest import ROOT

from .conftest import TIMEOUT, start_server, stop_server, wait_for
from .faulty_app import SECRET

SERVICE = ROOT / "service"


# ------------------------------------------------------------------ no debug
def test_the_app_is_never_in_debug_or_testing_mode():
    app = create_app()
    assert app.debug is False and app.testing is False
    assert app.config["DEBUG"] is False and app.config["PROPAGATE_EXCEPTIONS"] is None
    assert app.config["TRAP_HTTP_EXCEPTIONS"] is False


def test_gunicorn_configuration_has_no_reload_or_debug():
    r = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--print-config",
                        "service:create_app()"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PORT": "8000"})
    assert r.returncode == 0, r.stderr
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.*)$", r.stdout, re.M))
    assert settings["reload"] == "False" and settings["spew"] == "False"
    assert settings["loglevel"] == "info" and settings["worker_class"] == "gthread"
    assert settings["preload_app"] == "True"
    assert int(settings["limit_request_line"]) <= 8190 and int(settings["limit_request_field_size"]) <= 8190
    assert settings["when_ready"] != "None"  # the socket timeouts (see gunicorn.conf.py)


@pytest.mark.parametrize("path", ["Dockerfile", "docker-compose.yml", "scripts/serve.sh", "gunicorn.conf.py"])
def test_no_shipped_configuration_turns_on_debug_or_reload(path):
    text = (ROOT / path).read_text() if (ROOT / path).exists() else pytest.skip(f"no {path}")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for pattern in [r"--reload\b", r"--debug\b", r"FLASK_DEBUG\s*[=:]\s*['\"]?1", r"FLASK_ENV\s*[=:]\s*['\"]?development",
                    r"WEIGHTINIT_LOG_LEVEL\s*[=:]\s*['\"]?debug", r"\.run\(", r"reload\s*=\s*True", r"--spew\b"]:
        assert not re.search(pattern, code), (path, pattern)


# ------------------------------------------------------------------ a forced 500 over gunicorn
@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("gunicorn-faulty"), env={"WEIGHTINIT_WORKERS": "1"},
                     app="tests.hardening.faulty_app:create()")
    try:
        yield s
    finally:
        stop_server(s)


def test_a_forced_500_shows_no_traceback_and_logs_one(faulty):
    r = requests.get(faulty.url + "/__test__/boom", headers={"X-Request-ID": "boom-1"}, timeout=TIMEOUT)
    assert r.status_code == 500 and r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:weightinit:problem:internal" and body["request_id"] == "boom-1"
    assert "boom-1" in body["detail"]
    for leak in ("Traceback", 'File "', "RuntimeError", "secret", "hunter2", "/etc/", "site-packages", ".py"):
        assert leak not in r.text, leak
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert wait_for(lambda: "boom-1" in faulty.error_log(), 10)
    log = faulty.error_log()
    assert "unhandled error (request id boom-1)" in log and "Traceback" in log and SECRET in log


# ------------------------------------------------------------------ headers on every response
class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append(attrs)
            self._in_script = True
        for name in attrs:
            assert not name.startswith("on"), f"inline event handler {name}"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data)


def csp(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("path", ["/docs", "/"])
def test_html_pages_allow_only_their_own_scripts(faulty, path):
    r = requests.get(faulty.url + path, headers={"Accept": "text/html"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    policy = csp(r.headers["Content-Security-Policy"])
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts == ["'self'"], policy
    assert policy.get("object-src", policy.get("default-src")) in (["'none'"], ["'self'"])
    assert policy["base-uri"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    parser = _Scripts()
    parser.feed(r.text)
    assert parser.scripts and not parser.inline, "an inline script would not run under this policy"
    for attrs in parser.scripts:
        assert attrs["src"].startswith("/") and not attrs["src"].startswith("//"), attrs
        js = requests.get(faulty.url + attrs["src"], timeout=TIMEOUT)
        assert js.status_code == 200 and js.headers["X-Content-Type-Options"] == "nosniff"
        assert js.headers["Content-Type"].split(";")[0] in ("text/javascript", "application/javascript")
    assert "http://" not in r.text and "https://" not in r.text.replace("https://www.w3.org", "")


def test_every_response_has_nosniff_and_a_request_id_in_the_access_log(faulty):
    small = {"architecture": {"layers": [{"type": "dense", "in_features": 2, "out_features": 2}]}}
    exchanges = [
        ("GET", "/healthz", {}, None), ("HEAD", "/healthz", {}, None), ("OPTIONS", "/v1/plan", {}, None),
        ("GET", "/v1/schemes", {}, None), ("GET", "/v1/schemes/he_normal", {}, None),
        ("GET", "/v1/schemes/nope", {}, None), ("GET", "/openapi.yaml", {}, None), ("GET", "/openapi.json", {}, None),
        ("GET", "/docs", {}, None), ("GET", "/docs/init.js", {}, None), ("GET", "/docs/swagger-ui.css", {}, None),
        ("GET", "/", {"Accept": "text/html"}, None), ("GET", "/nowhere", {}, None), ("DELETE", "/v1/weights", {}, None),
        ("POST", "/v1/plan", {}, small), ("POST", "/v1/weights", {}, {**small, "format": "npz"}),
        ("POST", "/v1/weights", {"Accept": "text/html"}, small), ("POST", "/v1/weights", {}, {"seed": -1}),
        ("POST", "/v1/weights", {"Content-Type": "text/plain"}, None), ("GET", "/__test__/boom", {}, None),
        ("GET", "/v1/schemes", {"If-None-Match": "x" * 3000}, None),
    ]
    seen = []
    with requests.Session() as s:
        for method, path, headers, body in exchanges:
            r = s.request(method, faulty.url + path, headers=headers, json=body, timeout=TIMEOUT,
                          data=b"{}" if body is None and method == "POST" else None)
            assert r.headers.get("X-Content-Type-Options") == "nosniff", (method, path, r.status_code)
            assert REQUEST_ID.fullmatch(r.headers["X-Request-ID"]), (method, path)
            seen.append(r.headers["X-Request-ID"])
        etag = s.get(faulty.url + "/v1/schemes", timeout=TIMEOUT).headers["ETag"]
        r = s.get(faulty.url + "/v1/schemes", headers={"If-None-Match": etag}, timeout=TIMEOUT)
        assert r.status_code == 304 and r.headers["X-Content-Type-Options"] == "nosniff"
        seen.append(r.headers["X-Request-ID"])
    assert wait_for(lambda: all(f"rid={rid}" in faulty.access_log() for rid in seen), 10)
    lines = [line for line in faulty.access_log().splitlines() if line.strip()]
    assert len(lines) >= len(seen)
    for line in lines:
        m = re.search(r" rid=(\S*) ", line)
        assert m and REQUEST_ID.fullmatch(m.group(1)), line


# ------------------------------------------------------------------ no path, shell or pickle from a request
#: Every call in service/ that touches files, processes, code or deserializers, reviewed:
#: (file, call) -> why it is safe. A new one fails this test until someone reviews it here.
REVIEWED = {
    ("service/cli.py", "open"): "the CLI reads the request file and writes -o, both named on its command line",
    ("service/cli.py", "os.replace"): "the CLI's atomic rename of its own -o output",
    ("service/cli.py", "os.unlink"): "`weightinit generate` removes its own partial -o file after a failed write",
    ("service/cli.py", "json.loads"): "parses the CLI's request file (JSON, no code)",
    ("service/fetch.py", "makedirs"): "`weightinit generate/fetch -o DIR/` make the folder named on the command line",
    ("service/fetch.py", "tarfile.open"): "`weightinit fetch -o DIR/` reads back its own download (members checked by "
                                          "name against the hf files; unpacked by offset, never extractall)",
    ("service/fetch.py", "open"): "`weightinit fetch` reads the request file and writes -o, named on its command line",
    ("service/fetch.py", "os.replace"): "`weightinit fetch`'s atomic rename of its own -o output",
    ("service/fetch.py", "os.unlink"): "`weightinit fetch` removes its own partial download; in a -o DIR/ folder "
                                       "named on the command line, the hf files (fixed names) of an earlier folder",
    ("service/fetch.py", "json.loads"): "parses the request file / problem bodies (JSON, no code)",
    ("service/api/http.py", "orjson.loads"): "parses request bodies: JSON, no code, depth-limited",
    ("service/api/meta.py", "read_bytes"): "reads the packaged openapi.yaml (a constant name)",
    ("service/api/meta.py", "send_from_directory"): "Swagger UI assets; the name must be in DOCS_FILES first",
    ("service/api/diagnose.py", "read_bytes"): "explorer files; the name must be in EXPLORER_FILES (or is index.html)",
    ("service/output/npz.py", "write_array"): "writes the manifest with allow_pickle=False",
    ("service/document/__init__.py", "load"): "marshmallow Schema.load: validation, not deserialization of code",
    ("service/document/fields.py", "load"): "marshmallow Schema.load of an activation object: validation",
    ("service/document/strict.py", "load"): "marshmallow Schema.load (StrictSchema's lean path falls back to it): validation",
    ("service/document/schemas.py", "load"): "marshmallow Schema.load of a layer object: validation",
    ("service/openapi/build.py", "read_text"): "reads the package's own template.yaml (a fixed resource)",
    ("service/openapi/__main__.py", "read_text"): "python -m service.openapi --check reads the openapi.yaml it compares",
    ("service/openapi/__main__.py", "write_text"): "python -m service.openapi writes the generated openapi.yaml to the path it is given",
    ("service/document/hf.py", "load"): "marshmallow Schema.load of an hf_config family's keys: validation",
}
FORBIDDEN_IMPORTS = {"pickle", "marshal", "shelve", "dill", "cloudpickle", "subprocess", "pty", "ctypes"}
#: (file, forbidden import) -> why it is safe, reviewed like REVIEWED.
REVIEWED_IMPORTS = {
    ("service/core/native.py", "ctypes"): "loads only the package's own compiled twins (_ziggurat, found by importlib "
                                          "beside the package) and passes them buffers the engine allocated with their "
                                          "capacities; no request data becomes a path, a symbol or a pointer",
    ("service/core/seeds.py", "ctypes"): "calls the seed-words twin of service/core/native.py's library with an array "
                                         "it allocated and that array's capacity",
    ("service/core/normals.py", "ctypes"): "loads only the package's own compiled sampler (_ziggurat, found by "
                                           "importlib beside normals.py) and passes it buffers the engine allocated "
                                           "with their sizes; no request data becomes a path, a symbol or a pointer",
    ("service/core/linalg_identity.py", "ctypes"): "opens only NumPy's own LAPACK extension module (its __file__) "
                                                   "and calls OpenBLAS's argument-less get_corename/get_config/"
                                                   "get_num_threads; no request data becomes a path, a symbol or a "
                                                   "pointer",
    ("service/output/floattext.py", "ctypes"): "loads only the package's own compiled float printer (_f32text, "
                                                 "beside floattext.py); passes it NumPy buffers it allocated, sized "
                                                 "by the C layout's own bound (Printer.capacity) and checked by the C "
                                                 "code before each write",
}
#: builtins called by name, and method / module functions called by attribute
RISKY_BUILTINS = {"open", "eval", "exec", "compile", "__import__", "breakpoint", "send_file", "send_from_directory",
                  "system", "popen", "Popen", "check_output", "getoutput"}
RISKY_CALLS = {"open", "load", "loads", "save", "savez", "system", "popen", "send_file", "send_from_directory",
               "write_bytes", "write_text", "read_bytes", "read_text", "unlink", "rmtree", "write_array",
               "read_array", "spawnv", "execv", "execvp", "fork", "getoutput", "check_output", "Popen", "startfile",
               "mkdir", "makedirs", "symlink", "chmod"}
#: file operations whose method name is also a str method: only these qualified spellings count
RISKY_QUALIFIED = {"os.replace", "os.rename", "os.remove", "shutil.move", "shutil.copy", "shutil.copyfile"}


def _calls(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                yield "import", name.split(".")[0], node
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                yield "call", f.id, node
            elif isinstance(f, ast.Attribute):
                base = f.value.id if isinstance(f.value, ast.Name) else ""
                yield "call", f"{base}.{f.attr}" if base else f.attr, node


def test_no_request_data_reaches_a_path_a_shell_or_pickle():
    found = set()
    for path in sorted(SERVICE.rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for kind, name, node in _calls(path):
            if kind == "import":
                assert name not in FORBIDDEN_IMPORTS or (rel, name) in REVIEWED_IMPORTS, \
                    f"{rel}:{node.lineno} imports {name}"
                continue
            bare = isinstance(node.func, ast.Name)
            if (bare and name not in RISKY_BUILTINS) or (
                    not bare and name.split(".")[-1] not in RISKY_CALLS and name not in RISKY_QUALIFIED):
                continue
            kws = {k.arg: k.value for k in node.keywords}
            if "allow_pickle" in kws:
                assert isinstance(kws["allow_pickle"], ast.Constant) and kws["allow_pickle"].value is False, \
                    f"{rel}:{node.lineno}"
            if name.split(".")[-1] in ("load", "loads") and name.split(".")[0] in ("np", "numpy", "yaml", "pickle"):
                assert name != "yaml.load" and "allow_pickle" in kws or name.startswith("yaml.safe"), \
                    f"{rel}:{node.lineno}: {name} without allow_pickle=False / safe loader"
            key = (rel, name) if (rel, name) in REVIEWED else (rel, name.split(".")[-1])
            assert key in REVIEWED, f"{rel}:{node.lineno}: {name}(...) is not reviewed in REVIEWED"
            found.add(key)
    assert ("service/api/http.py", "orjson.loads") in found  # the scan sees the service's calls
    api_file_calls = {k for k in found if k[0].startswith("service/api/")} - {("service/api/http.py", "orjson.loads")}
    assert api_file_calls == {("service/api/meta.py", "read_bytes"), ("service/api/meta.py", "send_from_directory"),
                              ("service/api/diagnose.py", "read_bytes")}, api_file_calls


def test_the_vetted_file_reads_only_serve_their_lists(faulty):
    from service.api import diagnose, meta

    for name in meta.DOCS_FILES:
        assert requests.get(faulty.url + "/docs/" + name, timeout=TIMEOUT).status_code == 200, name
    for name in diagnose.EXPLORER_FILES:
        assert requests.get(faulty.url + "/explorer/" + name, timeout=TIMEOUT).status_code == 200, name
    for path in ["/docs/index.html", "/docs/oauth2-redirect.html", "/docs/swagger-ui.js.map", "/explorer/index.html",
                 "/explorer/x.js", "/docs/%2e%2e%2f__init__.py", "/explorer/%2e%2e%2fexplorer.js"]:
        r = requests.get(faulty.url + path, timeout=TIMEOUT)
        assert r.status_code == 404, (path, r.status_code)
